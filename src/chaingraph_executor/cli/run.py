"""``chaingraph run``: a flow in this process or on a server, with live progress."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

import click

from chaingraph_executor.cli._app import cli
from chaingraph_executor.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    _is_database_error,
    _settings,
    apply_sets,
    describe_event,
    event_json,
    executor_error,
    fail,
    first_line,
    format_ms,
    load_flow_file,
    local_registry,
    mask_url,
    parse_sets,
    reporting,
    run_sync,
)
from chaingraph_executor.errors import ExecutorError

if TYPE_CHECKING:
    from chaingraph_executor.client import Event, ExecutorClient
    from chaingraph_executor.settings import Settings


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
