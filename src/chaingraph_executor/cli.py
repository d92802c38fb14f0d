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
    elif ev.type == "node:skipped":
        detail = d.get("reason", "")
    elif ev.type in ("flow:cancelled", "flow:paused"):
        detail = d.get("reason", "")
    elif ev.type.startswith("edge:"):
        e = d.get("serializedEdge") or {}
        nid = f"{e.get('sourceNodeId')}.{e.get('sourcePortId')} -> {e.get('targetNodeId')}.{e.get('targetPortId')}"
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
            click.echo(json.dumps({"index": ev.index, "type": ev.type, "timestamp": ev.timestamp.isoformat(),
                                   "data": to_json_safe(ev.data)}))
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
