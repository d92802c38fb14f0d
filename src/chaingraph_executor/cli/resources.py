"""``chaingraph flows …`` and ``chaingraph executions …``: a server's flows and executions."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from chaingraph_executor.cli._app import cli
from chaingraph_executor.cli._common import (
    Group,
    _settings,
    ago,
    apply_sets,
    client_options,
    describe_event,
    event_json,
    format_ms,
    json_option,
    load_flow_file,
    local_registry,
    parse_sets,
    print_json,
    table,
    with_client,
)

if TYPE_CHECKING:
    from chaingraph_executor.client import ExecutorClient


# -------------------------------------------------------------------------------------- flows
@cli.group(cls=Group)
def flows() -> None:
    """Flows stored on a server: add, list, show, rm."""


@flows.command("add")
@click.argument("flow_file", metavar="FLOW.json")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NODE.PORT=VALUE",
    envvar="CHAINGRAPH_SET",
    show_envvar=True,
    help="override a node input before uploading (repeatable)",
)
@client_options
def flows_add(flow_file: str, sets: tuple[str, ...], server: str, token: str | None) -> None:
    """Upload FLOW.json (an existing id gets a new version)."""
    document = apply_sets(load_flow_file(flow_file), parse_sets(sets), local_registry(_settings()))

    async def go(client: ExecutorClient) -> Any:
        return await client.upload_flow(document)

    uploaded = with_client(server, token, go)
    click.echo(f"flow {uploaded.flow_id} version {uploaded.version}")


@flows.command("list")
@click.option(
    "--limit",
    type=click.IntRange(1, 100),
    default=50,
    show_default=True,
    envvar="CHAINGRAPH_LIMIT",
    show_envvar=True,
    help="flows per page",
)
@click.option(
    "--cursor",
    envvar="CHAINGRAPH_CURSOR",
    show_envvar=True,
    help="cursor of the next page (printed after a full page)",
)
@json_option
@client_options
def flows_list(limit: int, cursor: str | None, as_json: bool, server: str, token: str | None) -> None:
    """List the flows you can see (every flow for an admin)."""

    async def go(client: ExecutorClient) -> Any:
        return await client.list_flows(limit=limit, cursor=cursor)

    page = with_client(server, token, go)
    if as_json:
        print_json(page.model_dump(by_alias=True))
        return
    if not page.items:
        click.echo("no flows (add one with `chaingraph flows add FLOW.json`)")
        return
    rows = [[f.flow_id, str(f.version), str(f.nodes), f.name, ago(f.updated_at)] for f in page.items]
    table(rows, ["FLOW", "VERSION", "NODES", "NAME", "UPDATED"])
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}")


@flows.command("show")
@click.argument("flow_id")
@click.option(
    "--version",
    "version",
    type=click.IntRange(1),
    envvar="CHAINGRAPH_FLOW_VERSION",
    show_envvar=True,
    help="a given version [default: the latest]",
)
@json_option
@client_options
def flows_show(flow_id: str, version: int | None, as_json: bool, server: str, token: str | None) -> None:
    """Show a stored flow: its summary and its nodes (--json: the record with the document)."""

    async def go(client: ExecutorClient) -> Any:
        return await client.get_flow(flow_id, version)

    record = with_client(server, token, go)
    if as_json:
        print_json(record.model_dump(by_alias=True))
        return
    click.echo(f"flow {record.flow_id} version {record.version}: {record.name or '(no name)'}")
    click.echo(
        f"owner {record.owner_id}, updated {ago(record.updated_at)}, tags {', '.join(record.tags) or '-'}"
    )
    nodes = [n for n in record.flow.get("nodes", []) if isinstance(n, dict)]
    rows = [
        [str(n.get("id")), str(n.get("type")), json.dumps(n.get("inputs") or {}, ensure_ascii=False)]
        for n in nodes
    ]
    table(rows, ["NODE", "TYPE", "INPUTS"])
    click.echo(f"{len(record.flow.get('edges', []))} edge(s)")


@flows.command("rm")
@click.argument("flow_id")
@client_options
def flows_rm(flow_id: str, server: str, token: str | None) -> None:
    """Delete a flow (every version)."""

    async def go(client: ExecutorClient) -> None:
        await client.delete_flow(flow_id)

    with_client(server, token, go)
    click.echo(f"deleted flow {flow_id}")


# -------------------------------------------------------------------------------------- executions
@cli.group(cls=Group)
def executions() -> None:
    """Executions on a server: list, show, tree, events, create, start, stop, pause, resume, step."""


def execution_row(ex: Any) -> list[str]:
    took = format_ms(ex.duration_ms) if ex.started_at else ""
    return [ex.id, ex.status.value, ago(ex.created_at), took, ex.error_message or ""]


@executions.command("list")
@click.argument("flow_id")
@click.option(
    "--limit",
    type=click.IntRange(1, 100),
    default=20,
    show_default=True,
    envvar="CHAINGRAPH_LIMIT",
    show_envvar=True,
    help="executions to list",
)
@json_option
@client_options
def executions_list(flow_id: str, limit: int, as_json: bool, server: str, token: str | None) -> None:
    """List the root executions of a flow, newest first."""

    async def go(client: ExecutorClient) -> Any:
        return await client.get_root_executions(flow_id, limit=limit)

    roots = with_client(server, token, go)
    if as_json:
        print_json([r.model_dump(by_alias=True) for r in roots])
        return
    if not roots:
        click.echo(f"no executions of flow {flow_id}")
        return
    rows = [
        [*execution_row(r.execution)[:4], str(r.total_nested), execution_row(r.execution)[4]] for r in roots
    ]
    table(rows, ["EXECUTION", "STATUS".ljust(9), "CREATED", "TOOK".ljust(6), "CHILDREN", "ERROR"])


@executions.command("show")
@click.argument("execution_id")
@json_option
@client_options
def executions_show(execution_id: str, as_json: bool, server: str, token: str | None) -> None:
    """Show an execution: status, times, error and outputs."""

    async def go(client: ExecutorClient) -> Any:
        return await client.get_execution_details(execution_id)

    ex = with_client(server, token, go)
    if as_json:
        print_json(ex.model_dump(by_alias=True))
        return
    click.echo(f"execution {ex.id}")
    click.echo(f"flow:      {ex.flow_id} (version {ex.flow_version})")
    click.echo(f"status:    {ex.status.value}")
    click.echo(f"created:   {ago(ex.created_at)}")
    click.echo(f"started:   {ago(ex.started_at)}")
    click.echo(f"completed: {ago(ex.completed_at)}")
    if ex.duration_ms is not None:
        click.echo(f"took:      {format_ms(ex.duration_ms)}")
    if ex.parent_execution_id:
        click.echo(f"parent:    {ex.parent_execution_id} (depth {ex.execution_depth})")
    if ex.error_message:
        click.echo(
            f"error:     {ex.error_message}" + (f" (node {ex.error_node_id})" if ex.error_node_id else "")
        )
    if ex.outputs is not None:
        from chaingraph_executor.client._models import to_plain_json

        click.echo("outputs:   " + json.dumps(to_plain_json(ex.outputs), indent=2, ensure_ascii=False))


@executions.command("tree")
@click.argument("execution_id")
@json_option
@client_options
def executions_tree(execution_id: str, as_json: bool, server: str, token: str | None) -> None:
    """Show a root execution and every child execution below it."""

    async def go(client: ExecutorClient) -> Any:
        return await client.get_executions_tree(execution_id)

    nodes = with_client(server, token, go)
    if as_json:
        print_json([n.model_dump(by_alias=True) for n in nodes])
        return
    for n in nodes:
        ex = n.execution
        label = f" ({ex.external_events[0].get('eventName')})" if n.level and ex.external_events else ""
        click.echo(f"{'  ' * n.level}{ex.id}  {ex.status.value}{label}".rstrip())


@executions.command("events")
@click.argument("execution_id")
@click.option(
    "--from",
    "from_index",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    envvar="CHAINGRAPH_FROM",
    show_envvar=True,
    help="stream position to start at: 0 is execution:created, N the event with index N-1",
)
@click.option(
    "--type",
    "types",
    multiple=True,
    envvar="CHAINGRAPH_EVENT_TYPES",
    show_envvar=True,
    help="only events of this type (repeatable)",
)
@click.option(
    "--until",
    "until",
    metavar="TYPE",
    envvar="CHAINGRAPH_UNTIL",
    show_envvar=True,
    help="stop after the first event of this type (e.g. flow:paused) instead of at the end",
)
@json_option
@client_options
def executions_events(
    execution_id: str,
    from_index: int,
    types: tuple[str, ...],
    until: str | None,
    as_json: bool,
    server: str,
    token: str | None,
) -> None:
    """Print the events of an execution; follows a running one until it ends (or --until)."""

    async def go(client: ExecutorClient) -> int:
        count = 0
        async with client.subscribe_to_execution_events(
            execution_id, from_index=from_index, event_types=list(types) or None
        ) as stream:
            async for event in stream:
                click.echo(event_json(event) if as_json else describe_event(event))
                count += 1
                if until is not None and event.type == until:
                    break
        return count

    with_client(server, token, go)


@executions.command("create")
@click.argument("flow_id")
@click.option(
    "--start", "start_now", is_flag=True, envvar="CHAINGRAPH_START", show_envvar=True, help="start it at once"
)
@click.option(
    "--breakpoint",
    "breakpoints",
    multiple=True,
    metavar="NODE",
    envvar="CHAINGRAPH_BREAKPOINTS",
    show_envvar=True,
    help="pause before NODE (repeatable)",
)
@client_options
def executions_create(
    flow_id: str, start_now: bool, breakpoints: tuple[str, ...], server: str, token: str | None
) -> None:
    """Create an execution of a stored flow and print its id."""

    async def go(client: ExecutorClient) -> str:
        options = {"breakpoints": list(breakpoints)} if breakpoints else None
        eid = await client.create(flow_id, options=options)
        if start_now:
            await client.start(eid)
        return eid

    click.echo(with_client(server, token, go))


def _control_command(name: str, doc: str, with_reason: bool) -> None:
    @click.argument("execution_id")
    @client_options
    def command(execution_id: str, server: str, token: str | None, reason: str | None = None) -> None:
        async def go(client: ExecutorClient) -> None:
            method = getattr(client, name)
            if with_reason:
                await method(execution_id, reason)
            else:
                await method(execution_id)

        with_client(server, token, go)
        past = {"stop": "stopped", "step": "stepped", "start": "started"}.get(name, name + "d")
        click.echo(f"{past} {execution_id}")

    command.__doc__ = doc
    if with_reason:
        command = click.option(
            "--reason", envvar="CHAINGRAPH_REASON", show_envvar=True, help="why (recorded in the events)"
        )(command)
    executions.command(name)(command)


_control_command("start", "Start a created execution.", False)
_control_command("stop", "Stop an execution and its children (waits until it stopped).", True)
_control_command("pause", "Pause a running execution: running nodes finish, no new node starts.", True)
_control_command("resume", "Resume a paused execution.", False)
_control_command("step", "Let a paused execution start one more node.", False)
