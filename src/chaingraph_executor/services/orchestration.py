"""The pieces of a durable execution, written once over the ports.

The durable workflow (``backends/dbos``) composes them into checkpointed steps:

    execute: [root: await_start] ► begin_run ► run_flow [► finish when childless]
      ──► settle children ──► finish

``execute`` is the body of the ``executeFlowAtomic`` step. START is the execution's control state
moving from ``wait`` to ``run`` (docs/adr/0009); the step waits for it on the same control watch
that then drives the run.

``run_flow`` runs the engine on this worker, streams its events through a batching
:class:`EventWriter`, applies the control channel (pause / resume / step / breakpoints / stop)
and spawns a child execution for every emitted event as soon as it is emitted. The terminal
event is held back and written by ``finish`` in the same transaction as the terminal status.
``backends/memory/dispatcher.py`` runs the same pieces without durability, for fast tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from chaingraph_executor.domain.events import (
    TERMINAL_EVENT_VALUES,
    ErrorInfo,
    EventType,
    ExecutionEvent,
    created_event,
    event,
    from_json_safe,
    now,
    to_json_safe,
)
from chaingraph_executor.domain.execution import (
    EmittedEvent,
    Execution,
    ExecutionInfo,
    ExecutionOptions,
    ExecutionStatus,
    ExternalEvent,
)
from chaingraph_executor.domain.ids import child_execution_id
from chaingraph_executor.engine.control import ExecutionControl
from chaingraph_executor.engine.graph import CompiledFlow, compile_flow
from chaingraph_executor.engine.nodes import NodeRegistry
from chaingraph_executor.engine.runner import FlowEngine
from chaingraph_executor.errors import Conflict, ExecutionNotFound
from chaingraph_executor.ports import Control, ControlFeed, EventLog, ExecutionStore, FlowStore, StatusChange

log = logging.getLogger(__name__)

ACTIVE = frozenset({ExecutionStatus.RUNNING, ExecutionStatus.PAUSED})
NOT_TERMINAL = frozenset({ExecutionStatus.CREATED, ExecutionStatus.RUNNING, ExecutionStatus.PAUSED})


#: Enqueues the durable workflow of a child whose row already exists: ``(child id, depth)``; idempotent.
ChildSpawner = Callable[[str, int], Awaitable[None]]


@dataclass
class Ports:
    flows: FlowStore
    executions: ExecutionStore
    events: EventLog
    registry: NodeRegistry
    max_depth: int = 100
    event_batch_size: int = 2000
    services: dict[str, Any] | None = None


class EventWriter:
    """Group commit: the first event after a quiet spell is written at once; events arriving
    while a write is in flight are gathered and written together in the next transaction."""

    def __init__(
        self,
        events: EventLog,
        execution_id: str,
        *,
        max_batch: int = 2000,
        on_batch: Callable[[list[ExecutionEvent]], Awaitable[None]] | None = None,
    ) -> None:
        self._log = events
        self._execution_id = execution_id
        self._max_batch = max_batch
        self._buffer: list[ExecutionEvent] = []
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._on_batch = on_batch
        self._holding = False
        self.written = 0

    def add(self, ev: ExecutionEvent) -> None:
        if self._error is not None:
            raise self._error
        self._buffer.append(ev)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush_loop(), name="event-writer")

    async def _flush_loop(self) -> None:
        try:
            while self._buffer and not self._holding:
                batch = self._buffer[: self._max_batch]
                if self._on_batch is not None:
                    await self._on_batch(batch)
                await self._append_with_retry(batch)
                del self._buffer[: len(batch)]
                self.written += len(batch)
        except BaseException as exc:
            # The failed batch stays at the head of the buffer and nothing after it is written:
            # the stream never gets a hole. The run is aborted through the next add().
            self._error = exc
            raise
        finally:
            self._task = None

    async def _append_with_retry(self, batch: list[ExecutionEvent], attempts: int = 5) -> None:
        delay = 0.05
        for attempt in range(1, attempts + 1):
            try:
                await self._log.append(self._execution_id, batch)
                return
            except Conflict:
                # A previous attempt committed although its answer was lost: already written.
                if await self._log.last_seq(self._execution_id) >= batch[-1].seq:
                    return
                raise
            except Exception:
                if attempt == attempts:
                    raise
                log.warning("event append failed (attempt %d), retrying", attempt, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def hold(self) -> None:
        """Start no further write: what is buffered from now on is for :meth:`take_rest`."""
        self._holding = True

    async def take_rest(self) -> list[ExecutionEvent]:
        """Let the write in flight finish, then hand over what is still buffered (at most one batch;
        a longer backlog is written first) instead of writing it: the caller writes it with the
        terminal event, one statement less. Pause and resume events are written here as usual
        (their status change comes first)."""
        self.hold()
        while self._task is not None:
            await asyncio.shield(self._task)
        if self._error is not None:
            raise self._error
        rest, self._buffer = self._buffer, []
        if any(ev.type in (EventType.FLOW_PAUSED, EventType.FLOW_RESUMED) for ev in rest):
            self._buffer = rest
            await self.flush()
            return []
        if len(rest) > self._max_batch:  # a backlog: write it as usual, hand over one batch at most
            self._buffer = rest[: -self._max_batch]
            await self.flush()
            rest = rest[-self._max_batch :]
        return rest

    async def flush(self) -> None:
        """Write everything buffered (also after :meth:`hold`)."""
        self._holding = False
        if self._error is not None:
            raise self._error
        while self._task is not None or self._buffer:
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(self._flush_loop())
            task = self._task
            await asyncio.shield(task)
        if self._error is not None:
            raise self._error


def event_to_json(ev: ExecutionEvent) -> dict[str, Any]:
    return {
        "index": ev.index,
        "type": ev.type,
        "timestamp": ev.timestamp.isoformat(),
        "data": to_json_safe(ev.data),
    }


def event_from_json(doc: dict[str, Any]) -> ExecutionEvent:
    return ExecutionEvent(
        int(doc["index"]),
        str(doc["type"]),
        datetime.fromisoformat(doc["timestamp"]),
        from_json_safe(doc["data"]),
    )


def start_timeout_message(timeout_s: float) -> str:
    return f"Execution start timeout - START_SIGNAL not received within {timeout_s:g} seconds"


def depth_exceeded_message(depth: int, limit: int) -> str:
    return (
        f"Maximum execution depth exceeded: {depth} (limit {limit}). "
        "This may indicate an infinite event loop."
    )


async def fail_before_run(
    ports: Ports,
    execution: Execution,
    message: str,
    *,
    status: ExecutionStatus = ExecutionStatus.FAILED,
    expected: frozenset[ExecutionStatus] = NOT_TERMINAL,
) -> bool:
    """End an execution that never ran: terminal status and a terminal event, in one transaction."""
    last = await ports.events.last_seq(execution.id)
    type_ = EventType.FLOW_FAILED if status is ExecutionStatus.FAILED else EventType.FLOW_CANCELLED
    data: dict[str, Any] = {"flowMetadata": {"id": execution.flow_id}, "executionTime": 0}
    if status is ExecutionStatus.FAILED:
        data["error"] = ErrorInfo(message)
    else:
        data["reason"] = message
    terminal = event(last, type_, data)  # index = seq - 1, seq = last + 1
    done = await ports.executions.finish(
        execution.id, StatusChange(status, expected, error_message=message), [terminal]
    )
    return done is not None


class RunStart(NamedTuple):
    execution: Execution
    first_run: bool


#: How often a root waiting for START re-reads its control without a wake-up. START's NOTIFY (or
#: in-process wake-up) ends the wait at once, and a listener that reconnects wakes every waiter, so
#: this is only a last resort; waiting roots are many and cheap, and must stay cheap.
START_POLL_S = 10.0


async def await_start(
    ports: Ports, execution_id: str, controls: ControlFeed, timeout_s: float
) -> Control | None:
    """Wait until a root execution is started (its control leaves ``wait``) and return its control.

    ``None`` when it ends instead: stopped before it started, not started within ``timeout_s`` of
    its creation (it fails here, with its terminal event), or ended or gone meanwhile. The deadline
    counts from the durable creation time, so a re-run of the wait after a crash does not extend it.
    """
    control = controls.latest
    if control.state == "wait":
        ex = await ports.executions.get(execution_id)
        if ex is None or ex.status is not ExecutionStatus.CREATED:
            return None
        deadline = ex.created_at + timedelta(seconds=timeout_s)
        while control.state == "wait":
            left = (deadline - datetime.now(UTC)).total_seconds()
            changed = await controls.changed(left, poll_s=START_POLL_S) if left > 0 else None
            if changed is None:
                message = start_timeout_message(timeout_s)
                await fail_before_run(ports, ex, message, expected=frozenset({ExecutionStatus.CREATED}))
                return None
            control = changed
    if control.state == "stop":
        ex = await ports.executions.get(execution_id)
        if ex is None or ex.status.terminal:
            return None
        if ex.status is ExecutionStatus.CREATED:
            reason = control.reason or "User requested stop"
            created = frozenset({ExecutionStatus.CREATED})
            await fail_before_run(ports, ex, reason, status=ExecutionStatus.STOPPED, expected=created)
            return None
    return control


async def begin_run(ports: Ports, execution_id: str) -> RunStart | None:
    """The execution to run now and whether this is its first run: ``created`` moves to
    ``running`` (compare-and-set); ``running`` or ``paused`` means a re-run after a crash; ``None``
    when it ended meanwhile (e.g. stopped before it started)."""
    started = await ports.executions.set_status(
        execution_id, StatusChange(ExecutionStatus.RUNNING, frozenset({ExecutionStatus.CREATED}))
    )
    if started is not None:
        return RunStart(started, True)
    current = await ports.executions.get(execution_id)
    if current is None or current.status.terminal or current.status is ExecutionStatus.CREATED:
        return None
    return RunStart(current, False)


async def execute(
    ports: Ports,
    execution_id: str,
    *,
    wait_for_start: bool,
    start_timeout_s: float,
    slots: asyncio.Semaphore,
    cache: FlowCache,
    spawn: ChildSpawner | None = None,
) -> dict[str, Any]:
    """The body of the ``executeFlowAtomic`` step. A root first waits for START, holding no flow
    slot; then, in a slot: ``created → running``, the whole flow and — when no child executions
    remain to wait for — the terminal status with the terminal event.

    Returns ``{"skipped": True}`` when it did not run here (ended before it started, or gone),
    ``{"finished": status}``, or the run outcome (``RunOutcome.to_json``) whose children the
    caller settles before it calls :func:`finish`. Each part is idempotent, so a re-run after a
    crash is safe: a finished execution is skipped, a running one restarts its flow."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            controls = await stack.enter_async_context(ports.executions.watch_control(execution_id))
        except ExecutionNotFound:
            return {"skipped": True}
        if wait_for_start and await await_start(ports, execution_id, controls, start_timeout_s) is None:
            return {"skipped": True}
        async with slots:
            begun = await begin_run(ports, execution_id)
            if begun is None:
                return {"skipped": True}
            run = await run_flow(
                ports,
                execution_id,
                cache=cache,
                controls=controls,
                spawn=spawn,
                execution=begun.execution,
                first_run=begun.first_run,
            )
            outcome = run.to_json()
            if not outcome["children"]:
                last = await controls.current()
                status = await finish(ports, execution_id, outcome, run.next_index, last, tail=run.tail)
                return {"finished": status}
            return outcome


@dataclass
class RunOutcome:
    status: str
    error_message: str | None
    error_node_id: str | None
    outputs: dict[str, Any]
    terminal: dict[str, Any]  # the held-back terminal event (JSON form)
    next_index: int
    children: list[dict[str, str]]  # [{"id":..., "eventName":...}]
    # events not yet written, to be written with the terminal event (only without children: the
    # outcome of a parent is checkpointed, and its events are all written before that)
    tail: list[ExecutionEvent] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "error_message": self.error_message,
            "error_node_id": self.error_node_id,
            "outputs": to_json_safe(self.outputs),
            "terminal": self.terminal,
            "next_index": self.next_index,
            "children": self.children,
        }


class FlowCache:
    """Compiled flows by (id, version): a version never changes, so compiling once is safe."""

    def __init__(self, size: int = 256) -> None:
        self._items: dict[tuple[str, int], CompiledFlow] = {}
        self._size = size

    async def get(self, ports: Ports, flow_id: str, version: int) -> CompiledFlow | None:
        key = (flow_id, version)
        hit = self._items.get(key)
        if hit is not None:
            return hit
        stored = await ports.flows.get(flow_id, version)
        if stored is None:
            return None
        compiled = compile_flow(stored.flow, ports.registry)
        if len(self._items) >= self._size:
            self._items.pop(next(iter(self._items)))
        self._items[key] = compiled
        return compiled


def apply_control(control: ExecutionControl, desired: Control, previous: Control | None) -> None:
    """Drive the in-memory control from a change of the durable desired state. Only changes act:
    re-reading the same state never resumes a pause the engine took by itself (a breakpoint)."""
    if desired.state == "stop":
        control.stop(desired.reason or "User requested stop")
        return
    if set(desired.breakpoints) != control.breakpoints:
        control.set_breakpoints(desired.breakpoints)
    if desired.state == "pause":
        control.pause(desired.reason or "User requested pause")
        steps = desired.step_seq - (previous.step_seq if previous is not None else desired.step_seq)
        for _ in range(max(0, steps)):
            control.step()
    elif desired.state == "run" and previous is not None and previous.state != "run":
        control.resume()


async def run_flow(
    ports: Ports,
    execution_id: str,
    *,
    cache: FlowCache,
    controls: ControlFeed,
    spawn: ChildSpawner | None = None,
    execution: Execution | None = None,
    first_run: bool = False,
) -> RunOutcome:
    """Run the flow of an execution on this worker, driven by its live control state.
    ``first_run``: the caller just moved it from ``created``, so only ``execution:created`` exists."""
    ex = execution or await ports.executions.get(execution_id)
    if ex is None:
        raise RuntimeError(f"execution {execution_id} not found")
    compiled = await cache.get(ports, ex.flow_id, ex.flow_version)
    last_seq = 0 if first_run else await ports.events.last_seq(execution_id)
    attempt = 1
    if last_seq > 0:  # events beyond `execution:created`: this is a re-run of the step
        previous_starts = await ports.events.read(
            execution_id, 0, limit=10_000, types=frozenset({EventType.FLOW_STARTED.value})
        )
        attempt = len(previous_starts) + 1
    if compiled is None:
        msg = f"Flow {ex.flow_id} version {ex.flow_version} not found"
        terminal = event(
            last_seq,
            EventType.FLOW_FAILED,
            {"flowMetadata": {"id": ex.flow_id}, "error": ErrorInfo(msg), "executionTime": 0},
        )
        return RunOutcome("failed", msg, None, {}, event_to_json(terminal), last_seq + 1, [])

    options = ExecutionOptions.model_validate(ex.options or {})
    event_ctx = ExternalEvent.model_validate(ex.external_events[0]) if ex.external_events else None
    info = ExecutionInfo(
        execution_id=ex.id,
        flow_id=ex.flow_id,
        owner_id=ex.owner_id,
        root_execution_id=ex.root_execution_id,
        parent_execution_id=ex.parent_execution_id,
        execution_depth=ex.execution_depth,
        integration=ex.integration,
        event=event_ctx,
        attempt=attempt,
    )

    async def on_batch(batch: list[ExecutionEvent]) -> None:
        # The status row changes before the pause/resume event becomes visible.
        for ev in batch:
            if ev.type == EventType.FLOW_PAUSED:
                await ports.executions.set_status(
                    execution_id, StatusChange(ExecutionStatus.PAUSED, frozenset({ExecutionStatus.RUNNING}))
                )
                # A pause the engine took by itself (breakpoint, step) becomes the desired state too,
                # so that later commands (step, breakpoints) do not undo it; `resume` lifts it.
                desired = await ports.executions.get_control(execution_id)
                if desired.state == "run":
                    await ports.executions.update_control(
                        execution_id, state="pause", reason=ev.data.get("reason")
                    )
            elif ev.type == EventType.FLOW_RESUMED:
                await ports.executions.set_status(
                    execution_id, StatusChange(ExecutionStatus.RUNNING, frozenset({ExecutionStatus.PAUSED}))
                )

    writer = EventWriter(ports.events, execution_id, max_batch=ports.event_batch_size, on_batch=on_batch)
    held: list[ExecutionEvent] = []

    def sink(ev: ExecutionEvent) -> None:
        if ev.type in TERMINAL_EVENT_VALUES:
            held.append(ev)
            if not children:
                writer.hold()  # the rest goes with the terminal event (see below)
        else:
            writer.add(ev)

    control = ExecutionControl()
    children: list[dict[str, str]] = []
    engine: FlowEngine | None = None

    async def on_emitted(emitted: EmittedEvent) -> None:
        # The child row exists before anyone hears of it; the emitting node completes after this.
        assert engine is not None
        child_id = child_execution_id(ex.id, emitted.id)
        children.append({"id": child_id, "eventName": emitted.name})
        await _create_child(ports, ex, child_id, emitted)
        engine.emit(
            EventType.CHILD_EXECUTION_SPAWNED,
            {
                "parentExecutionId": ex.id,
                "childExecutionId": child_id,
                "rootExecutionId": ex.root_execution_id,
                "eventName": emitted.name,
                "eventData": emitted.payload,
            },
        )
        if spawn is not None:
            await spawn(child_id, ex.execution_depth + 1)

    engine = FlowEngine(
        compiled,
        info,
        sink,
        options=options,
        control=control,
        start_index=last_seq,
        on_emitted=on_emitted,
        services=ports.services,
    )
    initial = controls.latest
    apply_control(control, initial, None)

    async def follow_control() -> None:
        last = initial
        async for desired in controls:
            if desired.version <= last.version:
                continue
            apply_control(control, desired, last)
            last = desired

    watcher = asyncio.get_running_loop().create_task(follow_control(), name=f"control:{execution_id}")
    try:
        result = await engine.run()
    except Exception:
        # Whatever was emitted before the failure is written first, so the failure event that
        # follows keeps the stream dense.
        with contextlib.suppress(Exception):
            await writer.flush()
        raise
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
    # Without children the terminal event follows at once: what is still buffered goes with it.
    tail = await writer.take_rest() if not children else []
    await writer.flush()
    terminal = held[-1]
    return RunOutcome(
        status=result.status,
        error_message=result.error_message,
        error_node_id=result.error_node_id,
        outputs=result.outputs,
        terminal=event_to_json(terminal),
        next_index=terminal.index,
        children=children,
        tail=tail,
    )


async def _create_child(ports: Ports, parent: Execution, child_id: str, emitted: EmittedEvent) -> None:
    existing = await ports.executions.get(child_id)
    if existing is None:
        integration = dict(parent.integration)
        archai = integration.get("archai")
        if isinstance(archai, dict) and "messageID" in archai:
            integration["archai"] = {k: v for k, v in archai.items() if k != "messageID"}
        now = datetime.now(UTC)
        child = Execution(
            id=child_id,
            flow_id=parent.flow_id,
            owner_id=parent.owner_id,
            status=ExecutionStatus.CREATED,
            created_at=now,
            updated_at=now,
            root_execution_id=parent.root_execution_id,
            parent_execution_id=parent.id,
            execution_depth=parent.execution_depth + 1,
            options=parent.options,
            integration=integration,
            external_events=[{"eventName": emitted.name, "payload": to_json_safe(emitted.payload)}],
            flow_version=parent.flow_version,
            event_name=emitted.name,
        )
        created = created_event(
            execution_id=child_id,
            flow_id=parent.flow_id,
            flow_metadata={"id": parent.flow_id},
            owner_id=parent.owner_id,
            root_execution_id=parent.root_execution_id,
            parent_execution_id=parent.id,
            execution_depth=child.execution_depth,
        )
        try:
            await ports.executions.create(child, created)
        except Exception:
            if await ports.executions.get(child_id) is None:
                raise


async def child_settled_event(
    ports: Ports, parent_id: str, child_id: str, event_name: str, index: int
) -> dict[str, Any]:
    """The ``child:completed``/``child:failed`` event for a settled child, at a fixed index."""
    child = await ports.executions.get(child_id)
    status = child.status if child is not None else ExecutionStatus.FAILED
    data: dict[str, Any] = {
        "parentExecutionId": parent_id,
        "childExecutionId": child_id,
        "eventName": event_name,
    }
    if status is ExecutionStatus.COMPLETED:
        return event_to_json(event(index, EventType.CHILD_EXECUTION_COMPLETED, data))
    message = (child.error_message if child else None) or f"child execution ended {status.value}"
    data["error"] = ErrorInfo(message)
    data["status"] = status.value
    return event_to_json(event(index, EventType.CHILD_EXECUTION_FAILED, data))


async def append_idempotent(ports: Ports, execution_id: str, events: Sequence[ExecutionEvent]) -> None:
    """Append events at fixed indices; a replay that finds them already written is a no-op."""
    last = await ports.events.last_seq(execution_id)
    todo = [ev for ev in events if ev.seq > last]
    if not todo:
        return
    with contextlib.suppress(Conflict):
        await ports.events.append(execution_id, todo)


async def finish(
    ports: Ports,
    execution_id: str,
    outcome: dict[str, Any],
    index: int,
    control: Control | None = None,
    *,
    tail: Sequence[ExecutionEvent] = (),
) -> str:
    """Write the terminal status and the terminal event together (a stop request wins), after the
    run's ``tail`` (events not yet written). ``control``: the control state as the caller's live
    watch has it (else it is read here); a stop written in the instant the flow ended but not yet
    signalled then loses: the flow ended first."""
    control = control or await ports.executions.get_control(execution_id)
    terminal = event_from_json(outcome["terminal"])
    terminal.index = index
    terminal.timestamp = now()  # written after any child events: keep timestamps in stream order
    status = ExecutionStatus(outcome["status"])
    error = outcome.get("error_message")
    if control.state == "stop" and status is not ExecutionStatus.STOPPED:
        status = ExecutionStatus.STOPPED
        error = control.reason or "User requested stop"
        terminal = event(
            index,
            EventType.FLOW_CANCELLED,
            {"flowMetadata": terminal.data.get("flowMetadata", {}), "reason": error, "executionTime": 0},
        )
    change = StatusChange(
        status,
        ACTIVE,
        error_message=error,
        error_node_id=outcome.get("error_node_id"),
        outputs=outcome.get("outputs") or None,
    )
    done = await ports.executions.finish(execution_id, change, [*tail, terminal])
    if done is None:
        current = await ports.executions.get(execution_id)
        return current.status.value if current else "missing"
    return status.value
