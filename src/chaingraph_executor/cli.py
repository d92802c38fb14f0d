"""The ``chaingraph`` command line.

* ``chaingraph run FLOW.json``: runs a flow in this process (SQLite under ``.chaingraph``) or on a
  server (``--server``), with live progress, and exits with the run's outcome;
* ``serve`` / ``api`` / ``worker`` / ``migrate``: the service's processes;
* ``flows …`` / ``executions …``: a server's flows and executions, through the Python client;
* ``users …``: users and tokens, in the database directly;
* ``check``: configuration, database, schema and workers; ``version``.

Every option can also be set by the environment variable shown in ``--help``. Problems are one
``error: …`` line on stderr; exit codes: 0 ok (a run completed), 1 a run failed or was stopped
(or a command failed), 2 bad input (file, flow, ``--set``, token, arguments), 3 the server or
the database cannot be reached, 130 interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import click

from chaingraph_executor import __version__
from chaingraph_executor.errors import ExecutorError
from chaingraph_executor.settings import Mode

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


# ============================================================================================ run
class RunSession(Protocol):
    """What ``chaingraph run`` needs from where the flow runs (this process or a server)."""

    where: str

    async def upload(self, document: dict[str, Any]) -> str: ...

    async def create(self, flow_id: str) -> str: ...

    def events(self, execution_id: str) -> AsyncIterator[Event]: ...

    async def start(self, execution_id: str) -> None: ...

    async def stop(self, execution_id: str, reason: str) -> None: ...

    async def pause(self, execution_id: str) -> None: ...

    async def resume(self, execution_id: str) -> None: ...

    async def step(self, execution_id: str) -> None: ...

    async def outcome(self, execution_id: str) -> tuple[str, dict[str, Any], str | None]: ...


class LocalSession:
    """The embedded services of this process (``build_services(settings, "embedded")``)."""

    def __init__(self, services: Any, where: str) -> None:
        from chaingraph_executor.services.auth import DEV_PRINCIPAL

        self.sv = services
        self.principal = DEV_PRINCIPAL
        self.where = where

    async def upload(self, document: dict[str, Any]) -> str:
        stored = await self.sv.flows.upload(self.principal, document)
        return str(stored.flow.id)

    async def create(self, flow_id: str) -> str:
        return str(await self.sv.executions.create(self.principal, flow_id))

    async def events(self, execution_id: str) -> AsyncIterator[Event]:
        from chaingraph_executor.client import Event

        async with self.sv.executions.subscribe(self.principal, execution_id, from_index=0) as batches:
            async for batch in batches:
                for ev in batch:
                    yield Event(ev.index, ev.type, ev.timestamp, dict(ev.data))
                    if ev.terminal:
                        return

    async def start(self, execution_id: str) -> None:
        await self.sv.executions.start(self.principal, execution_id)

    async def stop(self, execution_id: str, reason: str) -> None:
        await self.sv.executions.stop(self.principal, execution_id, reason)

    async def pause(self, execution_id: str) -> None:
        await self.sv.executions.pause(self.principal, execution_id, "Paused from the command line")

    async def resume(self, execution_id: str) -> None:
        await self.sv.executions.resume(self.principal, execution_id)

    async def step(self, execution_id: str) -> None:
        await self.sv.executions.step(self.principal, execution_id)

    async def outcome(self, execution_id: str) -> tuple[str, dict[str, Any], str | None]:
        ex = await self.sv.executions.details(self.principal, execution_id)
        return ex.status.value, dict(ex.outputs or {}), ex.error_message

    async def settle(self, timeout_s: float = 5.0) -> None:
        """Wait until this process' workflows have returned (the run's last steps follow its
        terminal event), so the process can exit without a shutdown grace period."""
        worker = self.sv.worker
        if worker is None:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if not await self.sv.dispatcher.pending_of(worker.executor_id):
                    return
            except Exception:  # noqa: BLE001 - best effort: exiting anyway
                return
            await asyncio.sleep(0.02)


class RemoteSession:
    """A server, through :class:`ExecutorClient`."""

    def __init__(self, client: ExecutorClient) -> None:
        self.client = client
        self.where = client.base_url

    async def upload(self, document: dict[str, Any]) -> str:
        return (await self.client.upload_flow(document)).flow_id

    async def create(self, flow_id: str) -> str:
        return await self.client.create(flow_id)

    async def events(self, execution_id: str) -> AsyncIterator[Event]:
        async with self.client.subscribe_to_execution_events(execution_id) as stream:
            async for event in stream:
                yield event

    async def start(self, execution_id: str) -> None:
        await self.client.start(execution_id)

    async def stop(self, execution_id: str, reason: str) -> None:
        await self.client.stop(execution_id, reason)

    async def pause(self, execution_id: str) -> None:
        await self.client.pause(execution_id, "Paused from the command line")

    async def resume(self, execution_id: str) -> None:
        await self.client.resume(execution_id)

    async def step(self, execution_id: str) -> None:
        await self.client.step(execution_id)

    async def outcome(self, execution_id: str) -> tuple[str, dict[str, Any], str | None]:
        ex = await self.client.get_execution_details(execution_id)
        return ex.status.value, dict(ex.outputs or {}), ex.error_message


class NodeRow:
    __slots__ = ("detail", "duration_ms", "id", "started", "status", "title", "type")

    def __init__(self, node: dict[str, Any]) -> None:
        self.id = str(node.get("id"))
        self.type = str(node.get("type", ""))
        self.title = str(node.get("title") or "")
        self.status = "waiting"
        self.started: float | None = None
        self.duration_ms: float | None = None
        self.detail = ""


STATUS_STYLE = {
    "waiting": "dim",
    "running": "yellow",
    "done": "green",
    "failed": "bold red",
    "skipped": "dim",
    "breakpoint": "magenta",
    "not run": "dim",
}
FINISHED = frozenset({"done", "failed", "skipped"})


class RunDisplay:
    """How ``chaingraph run`` shows a run: ``json`` (one event per line, nothing else on stdout),
    ``plain`` (one line per event, then the status and outputs) or ``live`` (a rich node table
    with a progress bar and the log lines as they arrive)."""

    def __init__(self, document: dict[str, Any], mode: str, keys: bool) -> None:
        self.mode = mode
        self.keys = keys
        self.flow_id = str(document.get("id"))
        self.rows = {str(n.get("id")): NodeRow(n) for n in document.get("nodes", []) if isinstance(n, dict)}
        self.state = "starting"
        self.execution_id = ""
        self.where = ""
        self.started_at = time.monotonic()
        self.live: Any = None
        self.progress: Any = None
        self.task_id: Any = None
        self.console: Any = None
        if mode == "live":
            from rich.console import Console

            self.console = Console(highlight=False)

    # -------------------------------------------------------------- lifecycle
    def begin(self, execution_id: str, where: str) -> None:
        self.execution_id, self.where = execution_id, where
        header = f"execution {execution_id} of flow {self.flow_id} ({where})"
        if self.mode == "json":
            click.echo(header, err=True)
        elif self.mode == "plain":
            click.echo(header)
        else:
            from rich.live import Live
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]nodes"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
            )
            self.task_id = self.progress.add_task("nodes", total=max(1, len(self.rows)))
            self.live = Live(self, console=self.console, refresh_per_second=8, transient=False)
            self.live.start()

    def end(self) -> None:
        if self.live is not None:
            self.live.refresh()
            self.live.stop()
            self.live = None

    def note(self, text: str) -> None:
        """A message about the run (control actions, reconnects): stderr, or above the table."""
        if self.live is not None:
            self.live.console.print(f"[cyan]» {text}[/cyan]")
        else:
            click.echo(f"» {text}", err=True)

    # -------------------------------------------------------------- events
    def event(self, ev: Event) -> None:
        self._track(ev)
        if self.mode == "json":
            click.echo(event_json(ev))
        elif self.mode == "plain":
            click.echo(describe_event(ev))
        else:
            self._live_event(ev)

    def _track(self, ev: Event) -> None:
        row = self.rows.get(ev.node_id or "") if ev.type.startswith(("node:", "debug:")) else None
        if ev.type == "flow:started":
            self.state = "running"
        elif ev.type == "flow:paused":
            self.state = "paused"
        elif ev.type == "flow:resumed":
            self.state = "running"
        elif ev.terminal:
            self.state = {"flow:completed": "completed", "flow:failed": "failed"}.get(ev.type, "stopped")
            for r in self.rows.values():
                if r.status in ("waiting", "breakpoint"):
                    r.status = "not run"
                elif r.status == "running":
                    r.status = "not run" if self.state != "completed" else r.status
            self._update_progress()
        if row is None:
            return
        if ev.type == "node:started":
            row.status, row.started = "running", time.monotonic()
        elif ev.type == "node:completed":
            row.status, row.duration_ms = "done", ev.execution_time_ms
        elif ev.type == "node:failed":
            row.status, row.duration_ms, row.detail = "failed", ev.execution_time_ms, ev.error or ""
        elif ev.type == "node:skipped":
            row.status, row.detail = "skipped", ev.reason or ""
        elif ev.type == "debug:breakpoint-hit":
            row.status = "breakpoint"
        elif ev.type == "node:debug-log-string" and ev.log:
            row.detail = ev.log
        self._update_progress()

    def _update_progress(self) -> None:
        if self.progress is not None:
            ended = self.state in ("completed", "failed", "stopped")
            finished = FINISHED | {"not run"} if ended else FINISHED
            done = sum(1 for r in self.rows.values() if r.status in finished)
            self.progress.update(self.task_id, completed=done)

    def _live_event(self, ev: Event) -> None:
        from rich.markup import escape

        console = self.live.console if self.live is not None else self.console
        if ev.type == "node:debug-log-string":
            console.print(f"[dim]{escape(ev.node_id or '')}[/dim]  {escape(ev.log or '')}")
        elif ev.type in ("node:failed", "edge:transfer-failed"):
            console.print(f"[red]✗ {escape(ev.node_id or '')}: {escape(ev.error or '')}[/red]")
        elif ev.type in ("flow:paused", "flow:resumed"):
            console.print(f"[magenta]{ev.type.split(':')[1]}[/magenta] {escape(ev.reason or '')}")
        elif ev.type == "child:spawned":
            d = ev.data
            console.print(f"[blue]child {d.get('childExecutionId')} for event {d.get('eventName')}[/blue]")

    # -------------------------------------------------------------- rendering (live)
    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.markup import escape
        from rich.table import Table
        from rich.text import Text

        state_style = {"running": "yellow", "paused": "magenta", "completed": "green", "failed": "red"}
        header = Text.assemble(
            ("flow ", "dim"),
            (self.flow_id, "bold"),
            ("  execution ", "dim"),
            (self.execution_id, ""),
            ("  ", ""),
            (self.state, state_style.get(self.state, "dim")),
        )
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold dim")
        table.add_column("node", no_wrap=True)
        table.add_column("type", style="dim", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("time", justify="right", no_wrap=True)
        table.add_column("", overflow="ellipsis", no_wrap=True, max_width=60)
        rows = list(self.rows.values())
        hidden = 0
        if len(rows) > 25:
            keep = [r for r in rows if r.status in ("running", "failed", "breakpoint")]
            recent = [r for r in rows if r.status in ("done", "skipped")][-8:]
            shown = {id(r) for r in keep + recent}
            hidden = len(rows) - len(shown)
            rows = [r for r in rows if id(r) in shown]
        now = time.monotonic()
        for r in rows:
            ms = r.duration_ms
            if r.status == "running" and r.started is not None:
                ms = (now - r.started) * 1000
            table.add_row(
                escape(r.id),
                escape(r.type),
                Text(r.status, STATUS_STYLE.get(r.status, "")),
                format_ms(ms),
                escape(r.detail),
            )
        if hidden:
            table.add_row(f"… {hidden} more", "", "", "", "")
        parts: list[Any] = [header, table, self.progress]
        if self.keys and self.state in ("running", "paused", "starting"):
            parts.append(Text("p pause/resume · s step · q or Ctrl-C stop", "dim"))
        return Group(*parts)

    # -------------------------------------------------------------- the end
    def summary(self, status: str, outputs: dict[str, Any], error: str | None) -> None:
        from chaingraph_executor.client._models import to_plain_json

        if self.mode == "json":
            return
        took = format_ms((time.monotonic() - self.started_at) * 1000)
        rendered = json.dumps(to_plain_json(outputs), indent=2, ensure_ascii=False)
        if self.mode == "plain":
            click.echo(f"status: {status}")
            if error:
                click.echo(f"error: {error}")
            click.echo(f"outputs: {rendered}")
            return
        from rich.markup import escape

        style = {"completed": "bold green", "failed": "bold red"}.get(status, "bold yellow")
        self.console.print(f"status: [{style}]{status}[/{style}]  [dim]({took})[/dim]")
        if error:
            self.console.print(f"error: {escape(error)}")
        self.console.print(f"outputs: {escape(rendered)}")


class Controls:
    """Ctrl-C / SIGTERM stop the run (twice: quit at once), SIGUSR1 pauses, SIGUSR2 resumes; in
    a terminal ``p`` toggles pause, ``s`` steps and ``q`` stops."""

    def __init__(self, session: RunSession, display: RunDisplay, execution_id: str) -> None:
        self.session = session
        self.display = display
        self.execution_id = execution_id
        self.stops = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.main: asyncio.Task[Any] | None = None
        self._installed: list[int] = []
        self._tty_state: Any = None

    def __enter__(self) -> Controls:
        loop = asyncio.get_running_loop()
        self.main = asyncio.current_task()
        handlers: dict[str, Callable[[], None]] = {
            "SIGINT": self.request_stop,
            "SIGTERM": self.request_stop,
            "SIGUSR1": lambda: self.act("pause"),
            "SIGUSR2": lambda: self.act("resume"),
        }
        for name, handler in handlers.items():
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            try:
                loop.add_signal_handler(sig, handler)
                self._installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        if self.display.keys:
            self._start_keys(loop)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        self._stop_keys(loop)

    def request_stop(self) -> None:
        self.stops += 1
        if self.stops == 1:
            self.display.note("stopping the execution… (Ctrl-C again to quit without waiting)")
            self.act("stop")
        elif self.main is not None:
            self.main.cancel()

    def act(self, action: str) -> None:
        async def go() -> None:
            try:
                if action == "stop":
                    await self.session.stop(self.execution_id, "Stopped from the command line")
                elif action == "pause":
                    await self.session.pause(self.execution_id)
                elif action == "resume":
                    await self.session.resume(self.execution_id)
                elif action == "step":
                    await self.session.step(self.execution_id)
            except Exception as exc:  # noqa: BLE001 - a refused control is only a note
                self.display.note(f"{action}: {getattr(exc, 'message', None) or first_line(exc)}")
            else:
                if action != "stop":
                    self.display.note(f"{action} requested")

        task = asyncio.ensure_future(go())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _start_keys(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            import termios
            import tty

            fd = sys.stdin.fileno()
            self._tty_state = termios.tcgetattr(fd)
            tty.setcbreak(fd)
            loop.add_reader(fd, self._on_key)
        except Exception:  # noqa: BLE001 - no keyboard control then
            self._tty_state = None

    def _stop_keys(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._tty_state is None:
            return
        import termios

        fd = sys.stdin.fileno()
        with contextlib.suppress(Exception):
            loop.remove_reader(fd)
        with contextlib.suppress(Exception):
            termios.tcsetattr(fd, termios.TCSADRAIN, self._tty_state)
        self._tty_state = None

    def _on_key(self) -> None:
        try:
            key = os.read(sys.stdin.fileno(), 1).decode(errors="ignore").lower()
        except OSError:
            return
        if key == "p":
            self.act("resume" if self.display.state == "paused" else "pause")
        elif key == "s":
            self.act("step")
        elif key == "q":
            self.request_stop()


async def drive_run(session: RunSession, document: dict[str, Any], display: RunDisplay) -> str:
    """Upload, create, subscribe, start; show every event; return the final status."""
    flow_id = await session.upload(document)
    execution_id = await session.create(flow_id)
    display.begin(execution_id, session.where)
    try:
        with Controls(session, display, execution_id) as controls:
            events = session.events(execution_id)
            try:
                await session.start(execution_id)
                async for event in events:
                    display.event(event)
            finally:
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    await aclose()
            if controls.tasks:
                await asyncio.gather(*controls.tasks, return_exceptions=True)
    finally:
        display.end()
    status, outputs, error = await session.outcome(execution_id)
    display.summary(status, outputs, error)
    return status


def run_sync(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        fail("interrupted", EXIT_INTERRUPTED)


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


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="chaingraph")
def cli() -> None:
    """chaingraph-executor: run flows as durable executions and stream their events.

    Start with `chaingraph run examples/hello-world.json`; `chaingraph serve` runs the service.
    """


@cli.command()
@click.argument("flow_file", metavar="FLOW.json")
@click.option(
    "--server",
    envvar="CHAINGRAPH_SERVER",
    show_envvar=True,
    help="run on this server instead of in this process (e.g. http://127.0.0.1:4021)",
)
@click.option("--token", envvar="CHAINGRAPH_TOKEN", show_envvar=True, help="API token for --server")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NODE.PORT=VALUE",
    envvar="CHAINGRAPH_SET",
    show_envvar=True,
    help="override a node input (repeatable); VALUE is JSON when it parses, else text",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="CHAINGRAPH_JSON",
    show_envvar=True,
    help="print the events as JSON lines and nothing else on stdout",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    envvar="CHAINGRAPH_PROGRESS",
    show_envvar=True,
    help="live node table [default: on in a terminal; off: one line per event]",
)
@click.option(
    "--data-dir",
    envvar="CHAINGRAPH_DATA_DIR",
    show_envvar=True,
    type=click.Path(file_okay=False),
    help="where an in-process run keeps its files [default: .chaingraph]",
)
@click.option(
    "--database-url",
    envvar="CHAINGRAPH_DATABASE_URL",
    show_envvar=True,
    help="database of an in-process run [default: SQLite in the data dir]",
)
def run(
    flow_file: str,
    server: str | None,
    token: str | None,
    sets: tuple[str, ...],
    as_json: bool,
    progress: bool | None,
    data_dir: str | None,
    database_url: str | None,
) -> None:
    """Run FLOW.json and show its progress, final status and outputs.

    Without --server the flow runs in this process (SQLite under the data dir). Exit code: 0
    completed, 1 failed or stopped, 2 invalid flow or input, 3 server unreachable. Ctrl-C stops
    the execution; SIGUSR1 pauses it and SIGUSR2 resumes it (in a terminal: p, s, q keys).
    """
    document = load_flow_file(flow_file)
    overrides = parse_sets(sets)
    mode = (
        "json"
        if as_json
        else ("live" if (progress if progress is not None else sys.stdout.isatty()) else "plain")
    )
    keys = mode == "live" and sys.stdin.isatty()
    if server:
        settings = _settings()
        document = apply_sets(document, overrides, local_registry(settings))
        status = _run_remote(server, token, document, RunDisplay(document, mode, keys))
    else:
        settings = _settings(
            mode="embedded",
            data_dir=data_dir,
            database_url=database_url,
            executor_id=f"cli-run-{socket.gethostname()}-{os.getpid()}",
            shutdown_grace_s=0,
        )
        document = apply_sets(document, overrides, local_registry(settings))
        status = _run_local(settings, document, RunDisplay(document, mode, keys))
    sys.exit(EXIT_OK if status == "completed" else EXIT_FAILED)


def _run_remote(server: str, token: str | None, document: dict[str, Any], display: RunDisplay) -> str:
    from chaingraph_executor.client import ExecutorClient

    async def go() -> str:
        async with ExecutorClient(server, token=token) as client:
            return await drive_run(RemoteSession(client), document, display)

    with reporting(server):
        status: str = run_sync(go())
    return status


def _run_local(settings: Settings, document: dict[str, Any], display: RunDisplay) -> str:
    from chaingraph_executor.logconfig import configure_logging

    configure_logging("WARNING", settings.log_format)
    if not os.environ.get("CHAINGRAPH_DEBUG"):
        # DBOS logs its own failures with tracebacks; a run reports them in one line instead.
        logging.getLogger("dbos").addFilter(lambda record: record.levelno >= logging.CRITICAL)

    async def go() -> str:
        from chaingraph_executor.bootstrap import build_services

        where = f"in-process, data in {settings.data_dir}" if not settings.database_url else "in-process"
        try:
            async with build_services(settings, "embedded") as sv:
                session = LocalSession(sv, where)
                status = await drive_run(session, document, display)
                await session.settle()
                return status
        except ExecutorError as exc:
            executor_error(exc)
        except BrokenPipeError:
            raise
        except (OSError, ImportError) as exc:
            fail(f"cannot run in-process: {first_line(exc)}", EXIT_UNAVAILABLE)
        except Exception as exc:
            if _is_database_error(exc):
                fail(f"cannot open the database {mask_url(settings.app_database_url)}: {first_line(exc)}", 3)
            raise

    status: str = run_sync(go())
    return status


def _is_database_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("sqlalchemy", "psycopg", "sqlite3", "alembic")


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


# -------------------------------------------------------------------------------------- service
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
            type=click.Path(file_okay=False),
            help="where the embedded mode keeps its files [default: .chaingraph]",
        )(fn)
        fn = click.option(
            "--port",
            envvar="CHAINGRAPH_PORT",
            show_envvar=True,
            type=click.IntRange(0, 65535),
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


def _check_port_free(host: str, port: int) -> None:
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc} (check --host)", EXIT_FAILED)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            fail(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                "(is another chaingraph running there? choose another --port)",
                EXIT_FAILED,
            )


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
    _check_port_free(settings.host, settings.port)
    serving = False

    def announce(line: str) -> None:
        nonlocal serving
        serving = True
        click.echo(line)

    def on_signal(signum: int, frame: Any) -> None:
        # While serving, uvicorn handles SIGINT/SIGTERM (graceful shutdown) and raises the
        # signal again once it stopped listening: by then the shutdown is under way, let the
        # services close (worker deregistration, DBOS) instead of dying here.
        if not serving:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        asyncio.run(serve(settings, role, announce=announce))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        fail(f"cannot start: {exc.strerror or first_line(exc)}", EXIT_FAILED)
    except ExecutorError as exc:
        executor_error(exc)
    except Exception as exc:  # noqa: BLE001 - never a traceback: one line
        if _is_database_error(exc):
            fail(
                f"cannot open the database {mask_url(settings.app_database_url)}: {first_line(exc)}",
                EXIT_UNAVAILABLE,
            )
        fail(f"cannot start the {role}: {first_line(exc)}", EXIT_FAILED)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@cli.command()
@server_options()
def serve(host: str | None, port: int | None, data_dir: str | None, database_url: str | None) -> None:
    """Run the embedded service: API and worker in one process (SQLite by default, dev auth)."""
    _run_role("embedded", host, port, data_dir, database_url)


@cli.command()
@server_options()
def api(host: str | None, port: int | None, data_dir: str | None, database_url: str | None) -> None:
    """Run an API process (PostgreSQL): enqueues, signals, cancels and streams; never runs flows."""
    _run_role("api", host, port, data_dir, database_url)


@cli.command()
@server_options(default_port=9090)
@click.option(
    "--concurrency",
    envvar="CHAINGRAPH_WORKER_CONCURRENCY",
    show_envvar=True,
    type=click.IntRange(1),
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


def database_options(fn: Any) -> Any:
    fn = click.option(
        "--data-dir",
        envvar="CHAINGRAPH_DATA_DIR",
        show_envvar=True,
        type=click.Path(file_okay=False),
        help="where the embedded mode keeps its files [default: .chaingraph]",
    )(fn)
    fn = click.option(
        "--database-url",
        envvar="CHAINGRAPH_DATABASE_URL",
        show_envvar=True,
        help="application database [default: SQLite in the data dir]",
    )(fn)
    return fn


@cli.command()
@database_options
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
        code = EXIT_UNAVAILABLE if _is_database_error(exc) else EXIT_FAILED
        fail(f"migration of {mask_url(settings.app_database_url)} failed: {first_line(exc)}", code)
    click.echo(f"schema at {current} (head {head}); DBOS system schema ready")


# -------------------------------------------------------------------------------------- users
@cli.group(cls=Group)
def users() -> None:
    """Manage users and their API tokens (in the database, not through a server)."""


def _with_auth(database_url: str | None, data_dir: str | None, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    from chaingraph_executor.backends.sql import SqlBackend
    from chaingraph_executor.services.auth import AuthService

    settings = _settings(database_url=database_url, data_dir=data_dir)
    url = settings.app_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

    async def go() -> Any:
        async with SqlBackend(url, migrate=True, pool_size=1, max_overflow=0) as backend:
            return await fn(AuthService(backend.users, dev_mode=False))

    try:
        return asyncio.run(go())
    except ExecutorError as exc:
        executor_error(exc)
    except Exception as exc:
        if _is_database_error(exc) or isinstance(exc, OSError):
            fail(f"cannot open the database {mask_url(url)}: {first_line(exc)}", EXIT_UNAVAILABLE)
        raise


@users.command("add")
@click.argument("name")
@click.option(
    "--admin",
    is_flag=True,
    envvar="CHAINGRAPH_ADMIN",
    show_envvar=True,
    help="the user may see and control every execution",
)
@database_options
def users_add(name: str, admin: bool, database_url: str | None, data_dir: str | None) -> None:
    """Add a user and print its token (shown once; only its hash is stored)."""

    async def go(auth: Any) -> Any:
        return await auth.add_user(name, is_admin=admin)

    user, token = _with_auth(database_url, data_dir, go)
    click.echo(f"user {user.name} ({user.id}){' admin' if user.is_admin else ''}")
    click.echo(f"token: {token}")


@users.command("list")
@database_options
def users_list(database_url: str | None, data_dir: str | None) -> None:
    """List users."""

    async def go(auth: Any) -> Any:
        return await auth.list_users()

    found = _with_auth(database_url, data_dir, go)
    if not found:
        click.echo("no users (add one with `chaingraph users add NAME`)")
    for u in found:
        flags = ", ".join(f for f, on in (("admin", u.is_admin), ("revoked", u.revoked)) if on)
        click.echo(f"{u.id}  {u.name}  {u.created_at:%Y-%m-%d %H:%M}  {flags}".rstrip())


@users.command("revoke")
@click.argument("name_or_id")
@database_options
def users_revoke(name_or_id: str, database_url: str | None, data_dir: str | None) -> None:
    """Revoke a user's token."""

    async def go(auth: Any) -> None:
        await auth.revoke(name_or_id)

    _with_auth(database_url, data_dir, go)
    click.echo(f"revoked {name_or_id}")


# -------------------------------------------------------------------------------------- check
@cli.command()
@database_options
def check(database_url: str | None, data_dir: str | None) -> None:
    """Check the configuration, the database, its schema and the workers seen recently.

    Exit code 0 when nothing failed (warnings allowed), 1 otherwise."""
    settings = _settings(database_url=database_url, data_dir=data_dir)
    results: list[tuple[str, str, str]] = []
    url = settings.app_database_url
    auth = "dev (everyone is an admin)" if settings.is_dev_auth else "tokens"
    results.append(
        (
            "ok",
            "config",
            f"mode {settings.mode}, database {mask_url(url)}, data dir {settings.data_dir}, auth {auth}",
        )
    )
    results += asyncio.run(_check_database(settings))
    width = max(len(name) for _, name, _ in results)
    for level, name, detail in results:
        click.echo(f"{level:<5} {name:<{width}}  {detail}")
    sys.exit(EXIT_FAILED if any(level == "FAIL" for level, _, _ in results) else EXIT_OK)


async def _check_database(settings: Settings) -> list[tuple[str, str, str]]:
    from chaingraph_executor.backends.sql import SqlBackend, schema_status

    url = settings.app_database_url
    out: list[tuple[str, str, str]] = []
    if url.startswith("sqlite:///") and ":memory:" not in url:
        path = Path(url.removeprefix("sqlite:///"))
        if not await asyncio.to_thread(path.exists):
            out.append(
                (
                    "FAIL",
                    "database",
                    f"{path} does not exist yet: run `chaingraph migrate` or `chaingraph serve`",
                )
            )
            return out
    try:
        current, head = await asyncio.wait_for(schema_status(url), 15)
    except Exception as exc:  # noqa: BLE001 - any failure is reported in one line
        out.append(("FAIL", "database", f"cannot connect to {mask_url(url)}: {first_line(exc)}"))
        return out
    out.append(("ok", "database", f"reachable ({mask_url(url)})"))
    if current is None:
        out.append(("FAIL", "schema", f"not created (head {head}): run `chaingraph migrate`"))
        return out
    if current != head:
        out.append(("FAIL", "schema", f"at {current}, head is {head}: run `chaingraph migrate`"))
        return out
    out.append(("ok", "schema", f"at {current} (head)"))
    async with SqlBackend(url, pool_size=1, max_overflow=0, listen=False) as backend:
        workers = await backend.workers.list()
    now = datetime.now(UTC)
    alive = [w for w in workers if (now - w.heartbeat_at).total_seconds() <= settings.worker_dead_after_s]
    if alive:
        seen = ", ".join(
            f"{w.executor_id} ({(now - w.heartbeat_at).total_seconds():.0f} s ago)" for w in alive
        )
        out.append(("ok", "workers", f"{len(alive)} alive: {seen}"))
    else:
        stale = f" ({len(workers)} silent)" if workers else ""
        out.append(
            (
                "warn",
                "workers",
                f"none seen in the last {settings.worker_dead_after_s:g} s{stale}: executions wait until "
                "one runs (`chaingraph serve` or `chaingraph worker`)",
            )
        )
    return out


@cli.command()
def version() -> None:
    """Print the version."""
    click.echo(f"chaingraph-executor {__version__}")


def main() -> None:
    """Entry point: click's parsing, then one ``error:`` line for anything that goes wrong."""
    try:
        cli.main(prog_name="chaingraph", standalone_mode=False)
    except CliError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.code)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining
        # when it flushes stdout at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
    except Exception as exc:
        if os.environ.get("CHAINGRAPH_DEBUG"):
            raise
        click.echo(
            f"error: unexpected {type(exc).__name__}: {first_line(exc)} "
            "(set CHAINGRAPH_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(EXIT_FAILED)
