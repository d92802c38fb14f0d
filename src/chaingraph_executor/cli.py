"""The ``chaingraph`` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from chaingraph_executor import __version__
from chaingraph_executor.domain.events import ExecutionEvent, to_json_safe
from chaingraph_executor.errors import ExecutorError, InvalidFlow
from chaingraph_executor.settings import Mode

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def load_flow_file(path: str) -> Any:
    p = Path(path)
    if not p.exists():
        fail(f"flow file '{path}' does not exist")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        fail(f"flow file '{path}' is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except OSError as exc:
        fail(f"cannot read flow file '{path}': {exc.strerror}")


def describe_event(ev: ExecutionEvent) -> str:
    d = ev.data
    node = d.get("node") or {}
    nid = node.get("id") or d.get("nodeId")
    detail = ""
    if ev.type == "node:completed":
        detail = json.dumps(to_json_safe(d.get("outputs") or {}))
    elif ev.type in ("node:failed", "flow:failed"):
        detail = str(getattr(d.get("error"), "message", d.get("error")))
    elif ev.type == "node:debug-log-string":
        detail = d.get("log", "")
    elif ev.type == "node:skipped" or ev.type in ("flow:cancelled", "flow:paused"):
        detail = d.get("reason", "")
    elif ev.type.startswith("edge:"):
        e = d.get("serializedEdge") or {}
        src = f"{e.get('sourceNodeId')}.{e.get('sourcePortId')}"
        nid = f"{src} -> {e.get('targetNodeId')}.{e.get('targetPortId')}"
    parts = [f"{ev.index:>5}", f"{ev.type:<24}"]
    if nid:
        parts.append(str(nid))
    if detail:
        parts.append(detail)
    return "  ".join(parts)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chaingraph")
def main() -> None:
    """chaingraph-executor: run flows as durable executions and stream their events."""


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(f"chaingraph-executor {__version__}")


@main.command()
@click.argument("flow_file", metavar="FLOW.json")
@click.option("--json", "as_json", is_flag=True, help="print the event stream as JSON lines")
@click.option("--quiet", "-q", is_flag=True, help="print only the final status and outputs")
def run(flow_file: str, as_json: bool, quiet: bool) -> None:
    """Run FLOW.json and print its events and final outputs (exit 0 completed, 1 failed, 2 invalid)."""
    from chaingraph_executor.domain.execution import ExecutionInfo
    from chaingraph_executor.domain.flow import parse_flow
    from chaingraph_executor.engine.graph import compile_flow
    from chaingraph_executor.engine.library import builtin_registry
    from chaingraph_executor.engine.runner import FlowEngine

    document = load_flow_file(flow_file)
    try:
        compiled = compile_flow(parse_flow(document), builtin_registry())
    except InvalidFlow as exc:
        fail(str(exc))

    def sink(ev: ExecutionEvent) -> None:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "index": ev.index,
                        "type": ev.type,
                        "timestamp": ev.timestamp.isoformat(),
                        "data": to_json_safe(ev.data),
                    }
                )
            )
        elif not quiet:
            click.echo(describe_event(ev))

    async def go() -> Any:
        engine = FlowEngine(compiled, ExecutionInfo("EXlocal", compiled.flow.id), sink)
        return await engine.run()

    try:
        result = asyncio.run(go())
    except ExecutorError as exc:
        fail(str(exc), EXIT_FAILED)
    if not as_json:
        click.echo(f"status: {result.status}")
        if result.error_message:
            click.echo(f"error: {result.error_message}")
        click.echo("outputs: " + json.dumps(to_json_safe(result.outputs), indent=2))
    sys.exit(EXIT_OK if result.status == "completed" else EXIT_FAILED)


def _settings(**overrides: Any) -> Any:
    from pydantic import ValidationError

    from chaingraph_executor.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"invalid setting {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")


def server_options(default_port: int | None = None) -> Any:
    def decorate(fn: Any) -> Any:
        fn = click.option(
            "--database-url",
            envvar="CHAINGRAPH_DATABASE_URL",
            show_envvar=True,
            help="application database (sqlite:///… or postgresql://…)",
        )(fn)
        fn = click.option(
            "--data-dir",
            envvar="CHAINGRAPH_DATA_DIR",
            show_envvar=True,
            type=click.Path(),
            help="where the embedded mode keeps its files [default: .chaingraph]",
        )(fn)
        fn = click.option(
            "--port",
            envvar="CHAINGRAPH_PORT",
            show_envvar=True,
            type=int,
            default=default_port,
            help="port to listen on"
            + (f" [default: {default_port}]" if default_port else " [default: 4021]"),
        )(fn)
        fn = click.option(
            "--host",
            envvar="CHAINGRAPH_HOST",
            show_envvar=True,
            help="address to listen on [default: 127.0.0.1]",
        )(fn)
        return fn

    return decorate


def _run_role(
    role: Mode,
    host: str | None,
    port: int | None,
    data_dir: str | None,
    database_url: str | None,
    **extra: Any,
) -> None:
    from chaingraph_executor.logconfig import configure_logging
    from chaingraph_executor.serve import serve

    settings = _settings(
        mode=role, host=host, port=port, data_dir=data_dir, database_url=database_url, **extra
    )
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(serve(settings, role, announce=click.echo))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        fail(f"cannot start: {exc.strerror or exc}", EXIT_FAILED)
    except ExecutorError as exc:
        fail(str(exc), EXIT_FAILED)


@main.command()
@server_options()
def serve(host: str | None, port: int | None, data_dir: str | None, database_url: str | None) -> None:
    """Run the embedded service: API and worker in one process (SQLite by default, dev auth)."""
    _run_role("embedded", host, port, data_dir, database_url)


@main.command()
@server_options()
def api(host: str | None, port: int | None, data_dir: str | None, database_url: str | None) -> None:
    """Run an API process (PostgreSQL): enqueues, signals, cancels and streams; never runs flows."""
    _run_role("api", host, port, data_dir, database_url)


@main.command()
@server_options(default_port=9090)
@click.option(
    "--concurrency",
    envvar="CHAINGRAPH_WORKER_CONCURRENCY",
    show_envvar=True,
    type=int,
    help="flows this worker runs at once [default: 10]",
)
@click.option(
    "--executor-id",
    envvar="CHAINGRAPH_EXECUTOR_ID",
    show_envvar=True,
    help="stable unique id of this worker [default: <hostname>-<pid>]",
)
def worker(
    host: str | None,
    port: int | None,
    data_dir: str | None,
    database_url: str | None,
    concurrency: int | None,
    executor_id: str | None,
) -> None:
    """Run a worker process (PostgreSQL): runs flows; its health endpoint listens on --port."""
    _run_role(
        "worker", host, port, data_dir, database_url, worker_concurrency=concurrency, executor_id=executor_id
    )


@main.command()
@click.option(
    "--database-url", envvar="CHAINGRAPH_DATABASE_URL", show_envvar=True, help="application database"
)
@click.option("--data-dir", envvar="CHAINGRAPH_DATA_DIR", show_envvar=True, type=click.Path())
def migrate(database_url: str | None, data_dir: str | None) -> None:
    """Create or upgrade the application schema and the DBOS system schema."""
    from chaingraph_executor.backends.dbos.runtime import migrate_system_database
    from chaingraph_executor.backends.sql import migrate as migrate_app
    from chaingraph_executor.backends.sql import schema_status
    from chaingraph_executor.bootstrap import _ensure_sqlite_dirs

    settings = _settings(database_url=database_url, data_dir=data_dir)
    _ensure_sqlite_dirs(settings.app_database_url)
    _ensure_sqlite_dirs(settings.dbos_system_url)

    async def go() -> tuple[str | None, str]:
        await migrate_app(settings.app_database_url)
        await asyncio.to_thread(migrate_system_database, settings.dbos_system_url)
        return await schema_status(settings.app_database_url)

    try:
        current, head = asyncio.run(go())
    except Exception as exc:  # noqa: BLE001 - any failure is reported in one line
        fail(f"migration failed: {exc}", EXIT_FAILED)
    click.echo(f"schema at {current} (head {head}); DBOS system schema ready")


@main.group()
def users() -> None:
    """Manage users and their API tokens."""


def _with_services(fn: Any) -> Any:
    from chaingraph_executor.backends.sql import SqlBackend
    from chaingraph_executor.bootstrap import _ensure_sqlite_dirs
    from chaingraph_executor.services.auth import AuthService

    settings = _settings()
    _ensure_sqlite_dirs(settings.app_database_url)

    async def go() -> Any:
        async with SqlBackend(settings.app_database_url, migrate=True) as backend:
            return await fn(AuthService(backend.users, dev_mode=False))

    try:
        return asyncio.run(go())
    except ExecutorError as exc:
        fail(str(exc), EXIT_FAILED)


@users.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="the user may see and control every execution")
def users_add(name: str, admin: bool) -> None:
    """Add a user and print its token (shown once; only its hash is stored)."""

    async def go(auth: Any) -> Any:
        return await auth.add_user(name, is_admin=admin)

    user, token = _with_services(go)
    click.echo(f"user {user.name} ({user.id}){' admin' if user.is_admin else ''}")
    click.echo(f"token: {token}")


@users.command("list")
def users_list() -> None:
    """List users."""

    async def go(auth: Any) -> Any:
        return await auth.list_users()

    for u in _with_services(go):
        flags = ", ".join(f for f, on in (("admin", u.is_admin), ("revoked", u.revoked)) if on)
        click.echo(f"{u.id}  {u.name}  {u.created_at:%Y-%m-%d %H:%M}  {flags}".rstrip())


@users.command("revoke")
@click.argument("name_or_id")
def users_revoke(name_or_id: str) -> None:
    """Revoke a user's token."""

    async def go(auth: Any) -> None:
        await auth.revoke(name_or_id)

    _with_services(go)
    click.echo(f"revoked {name_or_id}")
