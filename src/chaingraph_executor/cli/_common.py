"""Shared pieces of the command line: exit codes and errors, settings, flow files and ``--set``,
output formatting, the client options."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from chaingraph_executor.errors import ExecutorError

if TYPE_CHECKING:
    from chaingraph_executor.client import Event, ExecutorClient
    from chaingraph_executor.engine.nodes import NodeRegistry
    from chaingraph_executor.settings import Settings


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_SERVER = "http://127.0.0.1:4021"


class CliError(Exception):
    """A problem reported as one ``error: …`` line and an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    raise CliError(message, code)


def first_line(exc: BaseException) -> str:
    """An exception's message on one line (multi-line driver messages are joined)."""
    text = str(exc).strip() or type(exc).__name__
    joined = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return joined if len(joined) <= 400 else joined[:397] + "..."


def executor_error(exc: ExecutorError) -> NoReturn:
    """A project error as one line: bad input exits 2, an unavailable backend 3, the rest 1."""
    from chaingraph_executor.errors import ErrorKind

    codes = {
        ErrorKind.INVALID: EXIT_USAGE,
        ErrorKind.NOT_FOUND: EXIT_USAGE,
        ErrorKind.CONFLICT: EXIT_USAGE,
        ErrorKind.UNAVAILABLE: EXIT_UNAVAILABLE,
    }
    fail(first_line(exc), codes.get(exc.kind, EXIT_FAILED))


# ============================================================================================ input
def load_flow_file(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        fail(f"flow file '{path}' does not exist")
    if p.is_dir():
        fail(f"'{path}' is a directory, not a flow file")
    try:
        document = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        fail(f"flow file '{path}' is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except UnicodeDecodeError:
        fail(f"flow file '{path}' is not UTF-8 text")
    except OSError as exc:
        fail(f"cannot read flow file '{path}': {exc.strerror}")
    if not isinstance(document, dict):
        fail(f"flow file '{path}' must hold a JSON object (a flow), not {type(document).__name__}")
    return document


def parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    """``node.port=value`` → ``{"node.port": value}``; the value is JSON when it parses, else text."""
    out: dict[str, Any] = {}
    for item in values:
        target, sep, raw = item.partition("=")
        if not sep or not target.strip():
            fail(f"--set '{item}': expected nodeId.port=value")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out[target.strip()] = value
    return out


def apply_sets(
    document: dict[str, Any], sets: dict[str, Any], registry: NodeRegistry | None
) -> dict[str, Any]:
    """The flow with the ``--set`` overrides; unknown nodes (and, for node types known here,
    unknown input ports) are one-line errors."""
    from chaingraph_executor.client import apply_inputs
    from chaingraph_executor.client._flows import split_target

    if not sets:
        return document
    try:
        updated = apply_inputs(document, sets)
    except ValueError as exc:
        fail(f"--set {exc}")
    if registry is not None:
        nodes = {n["id"]: n for n in updated.get("nodes", []) if isinstance(n, dict) and "id" in n}
        for target in sets:
            node_id, port = split_target(target, list(nodes))
            problem = _port_problem(nodes[node_id], port, registry)
            if problem:
                fail(f"--set {target}: {problem}")
    return updated


def _port_problem(node: dict[str, Any], port: str, registry: NodeRegistry) -> str | None:
    from pydantic import ValidationError

    from chaingraph_executor.domain.flow import Direction, FlowNode

    cls = registry.get(str(node.get("type")))
    if cls is None:
        return None  # the flow's validation names unknown node types
    try:
        flow_node = FlowNode.model_validate(node)
    except ValidationError:
        return None
    specs = cls.port_specs(flow_node)
    spec = specs.get(port)
    if spec is not None and spec.direction is Direction.INPUT:
        return None
    inputs = [s.id for s in specs.values() if s.direction is Direction.INPUT and not s.id.startswith("__")]
    listing = ", ".join(inputs) if inputs else "none"
    return f"node '{node['id']}' ({node.get('type')}) has no input port '{port}' (its inputs: {listing})"


def local_registry(settings: Settings) -> NodeRegistry:
    from chaingraph_executor.engine.library import builtin_registry

    registry = builtin_registry()
    for module in settings.node_modules:
        try:
            registry.load_module(module)
        except Exception as exc:  # noqa: BLE001 - reported in one line
            fail(f"cannot load node module '{module}' (CHAINGRAPH_NODE_MODULES): {first_line(exc)}")
    return registry


def _settings(**overrides: Any) -> Settings:
    from pydantic import ValidationError

    from chaingraph_executor.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"])
        fail(f"invalid setting {name} (CHAINGRAPH_{name.upper()}): {first['msg']}")


def mask_url(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


# ============================================================================================ events
def describe_event(ev: Event) -> str:
    """One line per event: index, type, node (or edge) and the interesting part of the payload."""
    from chaingraph_executor.client._models import to_plain_json

    d = ev.data
    nid: str | None = ev.node_id
    detail = ""
    if ev.type == "node:completed":
        detail = json.dumps(to_plain_json(ev.outputs or {}), ensure_ascii=False)
    elif ev.type in ("node:failed", "flow:failed", "edge:transfer-failed"):
        detail = ev.error or ""
    elif ev.type == "node:debug-log-string":
        detail = ev.log or ""
    elif ev.type in ("node:skipped", "flow:cancelled", "flow:paused", "flow:resumed"):
        detail = ev.reason or ""
    elif ev.type == "node:status-changed":
        detail = f"{d.get('oldStatus')} -> {d.get('newStatus')}"
    elif ev.type.startswith("edge:"):
        e = d.get("serializedEdge") or {}
        source = f"{e.get('sourceNodeId')}.{e.get('sourcePortId')}"
        nid = f"{source} -> {e.get('targetNodeId')}.{e.get('targetPortId')}"
    elif ev.type.startswith("child:"):
        nid = str(d.get("childExecutionId") or "")
        detail = str(d.get("eventName") or "")
    elif ev.type == "execution:created":
        nid = str(d.get("executionId") or "")
    parts = [f"{ev.index:>5}", f"{ev.type:<24}"]
    if nid:
        parts.append(str(nid))
    if detail:
        parts.append(detail)
    return "  ".join(parts).rstrip()


def event_json(ev: Event) -> str:
    return json.dumps(ev.to_json(), ensure_ascii=False)


def format_ms(ms: float | None) -> str:
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{int(ms // 60_000)}m{int(ms % 60_000 // 1000):02d}s"


# ============================================================================================ client
def client_errors(exc: BaseException, server: str) -> NoReturn:
    """Turn a client error into a one-line ``error:`` with an exit code."""
    from chaingraph_executor.client import RemoteError, TransportError

    if isinstance(exc, TransportError):
        fail(exc.message, EXIT_UNAVAILABLE)
    if isinstance(exc, RemoteError):
        if exc.code == "UNAUTHORIZED":
            fail(
                f"the server at {server} refused the request: {exc.message} "
                "(pass --token or set CHAINGRAPH_TOKEN; `chaingraph users add NAME` creates one)"
            )
        if exc.code == "FORBIDDEN":
            fail(f"not allowed: {exc.message}", EXIT_FAILED)
        if exc.code in ("BAD_REQUEST", "NOT_FOUND", "CONFLICT", "PAYLOAD_TOO_LARGE"):
            fail(exc.message)
        fail(f"{exc.message} ({exc.code})", EXIT_FAILED)
    raise exc


@contextlib.contextmanager
def reporting(server: str) -> Iterator[None]:
    from chaingraph_executor.client import ExecutorClientError

    try:
        yield
    except ExecutorClientError as exc:
        client_errors(exc, server)
    except ValueError as exc:
        fail(first_line(exc))


def with_client(server: str, token: str | None, fn: Callable[[ExecutorClient], Awaitable[Any]]) -> Any:
    from chaingraph_executor.client import ExecutorClient

    async def go() -> Any:
        async with ExecutorClient(server, token=token) as client:
            return await fn(client)

    with reporting(server):
        return run_sync(go())


def client_options(fn: Any) -> Any:
    fn = click.option(
        "--token",
        envvar="CHAINGRAPH_TOKEN",
        show_envvar=True,
        help="API token (not needed by a server in dev mode, the embedded default)",
    )(fn)
    fn = click.option(
        "--server",
        envvar="CHAINGRAPH_SERVER",
        show_envvar=True,
        default=DEFAULT_SERVER,
        show_default=True,
        help="URL of the chaingraph server",
    )(fn)
    return fn


def json_option(fn: Any) -> Any:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        envvar="CHAINGRAPH_JSON",
        show_envvar=True,
        help="print JSON instead of text",
    )(fn)


def print_json(value: Any) -> None:
    from chaingraph_executor.client._models import to_plain_json

    click.echo(json.dumps(to_plain_json(value), indent=2, ensure_ascii=False))


def ago(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def table(rows: list[list[str]], headers: list[str]) -> None:
    """Columns padded to their widest cell."""
    if not rows:
        return
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for r in [headers, *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


# ============================================================================================ commands
class Group(click.Group):
    """Commands listed in the order they were added."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


def run_sync(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        fail("interrupted", EXIT_INTERRUPTED)


def _is_database_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("sqlalchemy", "psycopg", "sqlite3", "alembic")
