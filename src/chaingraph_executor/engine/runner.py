"""The flow engine: runs a compiled flow in memory and reports every step as an event.

Rules (DESIGN.md §3):
- A node runs when each of its connected input ports has a resolved source; at most
  ``maxConcurrency`` nodes run at once. Nodes may resolve outputs early (streaming).
- A failed node resolves only ``__error``/``__errorMessage``. An error nobody handles ends the
  run ``failed`` after the rest of the graph has finished; handled errors end ``completed``.
- ``nodeTimeoutMs`` cancels the node (it fails); ``flowTimeoutMs`` cancels the run (``failed``);
  time spent paused does not count.
- Pause, resume, step and breakpoints act at node boundaries; stop cancels in-flight nodes at
  once and ends the run ``stopped`` with ``flow:cancelled``.

The engine does no I/O: events go to a synchronous ``sink``; emitted events go to ``on_emitted``,
which may return an awaitable (e.g. creating the child execution): the emitting node completes only
once it is done.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chaingraph_executor.domain.events import ErrorInfo, ExecutionEvent, NodeStatus, now
from chaingraph_executor.domain.execution import EmittedEvent, ExecutionInfo, ExecutionOptions
from chaingraph_executor.domain.flow import (
    ERROR_MESSAGE_PORT,
    ERROR_PORT,
    EXECUTE_PORT,
    SUCCESS_PORT,
    SYSTEM_PORTS,
    Direction,
)
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.control import ExecutionControl
from chaingraph_executor.engine.graph import CompiledFlow, CompiledNode
from chaingraph_executor.engine.nodes import Node
from chaingraph_executor.engine.streams import StreamChannel

EventSink = Callable[[ExecutionEvent], None]

COMPLETED = "completed"
FAILED = "failed"
STOPPED = "stopped"

_S_EXECUTING = NodeStatus.EXECUTING.value
_S_COMPLETED = NodeStatus.COMPLETED.value
_S_ERROR = NodeStatus.ERROR.value
_S_SKIPPED = NodeStatus.SKIPPED.value
_S_IDLE = NodeStatus.IDLE.value


class NodeOutputError(Exception):
    pass


@dataclass(slots=True, eq=False)
class NodeState:
    compiled: CompiledNode
    pending: int  # connected input ports still without a resolved source
    status: str = _S_IDLE
    # input port -> index of the edge whose source resolved first
    chosen: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    resolved: set[str] = field(default_factory=set)
    withheld: set[str] | None = None
    ctx: NodeContext | None = None
    task: asyncio.Task[None] | None = None
    error: str | None = None
    started_at: float = 0.0
    emitted: int = 0
    follow_ups: list[asyncio.Future[Any]] | None = None
    queued: bool = False


@dataclass(slots=True)
class EngineResult:
    status: str
    error_message: str | None
    error_node_id: str | None
    outputs: dict[str, dict[str, Any]]
    emitted: list[EmittedEvent]
    next_index: int
    duration_ms: float


class FlowEngine:
    def __init__(
        self,
        flow: CompiledFlow,
        info: ExecutionInfo,
        sink: EventSink,
        *,
        options: ExecutionOptions | None = None,
        control: ExecutionControl | None = None,
        start_index: int = 0,
        on_emitted: Callable[[EmittedEvent], Awaitable[None] | None] | None = None,
        services: Mapping[str, Any] | None = None,
    ) -> None:
        self.flow = flow
        self.info = info
        self.options = options or ExecutionOptions()
        self.control = control or ExecutionControl()
        self.control.breakpoints |= set(self.options.breakpoints)
        self.services: Mapping[str, Any] = services or {}
        self._sink = sink
        self._index = start_index
        self._on_emitted = on_emitted
        self._emitted: list[EmittedEvent] = []
        self._wake = asyncio.Event()
        self._done: list[NodeState] = []
        self._ready: deque[NodeState] = deque()
        self._running: set[NodeState] = set()
        self._states: list[NodeState | None] = []
        self._unhandled: tuple[str, str] | None = None
        self._timed_out = False
        self._paused = False
        self._pause_emitted = False
        self._step_budget = 0  # nodes still allowed to start in the current step
        self._stepping = False
        self._passed_breakpoints: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._remaining_s = self.options.execution.flow_timeout_ms / 1000
        self._node_timeout_s = self.options.execution.node_timeout_ms / 1000
        self._max_concurrency = self.options.execution.max_concurrency
        self._finished = False

    # -- events ---------------------------------------------------------------------------
    def _emit(self, type_: str, data: dict[str, Any]) -> None:
        ev = ExecutionEvent(self._index, type_, now(), data)
        self._index += 1
        self._sink(ev)

    def _snapshot(self, st: NodeState) -> dict[str, Any]:
        snap = dict(st.compiled.snapshot)
        snap["status"] = st.status
        return snap

    def _set_status(self, st: NodeState, new: str) -> None:
        old = st.status
        st.status = new
        self._emit("node:status-changed", {"nodeId": st.compiled.id, "oldStatus": old, "newStatus": new})

    def emit(self, type_: str, data: dict[str, Any]) -> None:
        """Publish an event of the host (e.g. ``child:spawned``) in this run's stream order."""
        self._emit(type_, data)

    @property
    def next_index(self) -> int:
        return self._index

    # -- called by NodeContext --------------------------------------------------------------
    def log(self, st: NodeState, message: str) -> None:
        self._emit("node:debug-log-string", {"nodeId": st.compiled.id, "log": message})

    def emit_event(self, st: NodeState, name: str, payload: Any) -> EmittedEvent:
        if not isinstance(name, str) or not name:
            raise ValueError("an emitted event needs a non-empty name")
        st.emitted += 1
        emitted = EmittedEvent(
            id=f"{st.compiled.id}#{st.emitted}", name=name, payload=payload, emitted_by=st.compiled.id
        )
        self._emitted.append(emitted)
        if self._on_emitted is not None:
            follow_up = self._on_emitted(emitted)
            if follow_up is not None:
                if st.follow_ups is None:
                    st.follow_ups = []
                st.follow_ups.append(asyncio.ensure_future(follow_up))
        return emitted

    def check_output_port(self, st: NodeState, port: str) -> None:
        spec = st.compiled.ports.get(port)
        if spec is None or spec.direction is not Direction.OUTPUT or port in SYSTEM_PORTS:
            raise NodeOutputError(f"node '{st.compiled.id}' has no output port '{port}'")

    def withhold(self, st: NodeState, port: str) -> None:
        self.check_output_port(st, port)
        if port in st.resolved:
            raise NodeOutputError(f"output port '{st.compiled.id}.{port}' was already published")
        if st.withheld is None:
            st.withheld = set()
        st.withheld.add(port)

    def resolve_early(self, st: NodeState, port: str, value: Any) -> None:
        self.check_output_port(st, port)
        if st.withheld is not None and port in st.withheld:
            raise NodeOutputError(f"output port '{st.compiled.id}.{port}' is withheld")
        st.outputs[port] = value
        if port not in st.resolved:
            self._resolve(st, port)

    # -- graph bookkeeping ----------------------------------------------------------------
    def _resolve(self, st: NodeState, port: str) -> None:
        st.resolved.add(port)
        edges = st.compiled.outgoing.get(port)
        if not edges:
            return
        all_edges = self.flow.edges
        states = self._states
        for ei in edges:
            edge = all_edges[ei]
            target = states[edge.target]
            if target is None:
                continue
            tport = edge.edge.target_port_id
            if tport in target.chosen:
                continue
            target.chosen[tport] = ei
            target.pending -= 1
            if target.pending == 0 and target.status == _S_IDLE and not target.queued:
                target.queued = True
                self._ready.append(target)
        self._wake.set()

    # -- the run ----------------------------------------------------------------------------
    async def run(self) -> EngineResult:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        self.control.subscribe(self._wake.set)
        event_name = self.info.event.event_name if self.info.event is not None else None
        included = self.flow.included(event_name)
        edges = self.flow.edges
        for cn, inc in zip(self.flow.nodes, included, strict=True):
            if not inc:
                self._states.append(None)
                continue
            connected = sum(
                1 for ei_list in cn.incoming.values() if any(included[edges[ei].source] for ei in ei_list)
            )
            self._states.append(NodeState(cn, connected))
        meta = self.flow.metadata_json
        start_data: dict[str, Any] = {"flowMetadata": meta}
        if self.info.attempt > 1:
            start_data["attempt"] = self.info.attempt
            start_data["restarted"] = True
        self._emit("flow:started", start_data)
        for st in self._states:
            if st is not None and st.pending == 0:
                st.queued = True
                self._ready.append(st)
        self._deadline = loop.time() + self._remaining_s
        self._timer = loop.call_at(self._deadline, self._on_flow_timeout)
        try:
            status = await self._loop()
        except BaseException:
            await self._cancel_running()
            raise
        finally:
            if self._timer is not None:
                self._timer.cancel()
        elapsed = (time.perf_counter() - started) * 1000
        error_message: str | None = None
        error_node: str | None = None
        if status == STOPPED:
            reason = self.control.stop_reason or "Execution cancelled"
            error_message = reason
            self._emit("flow:cancelled", {"flowMetadata": meta, "reason": reason, "executionTime": elapsed})
        elif self._timed_out:
            status = FAILED
            ms = self.options.execution.flow_timeout_ms
            error_message = f"Flow execution timed out after {ms} ms"
            self._emit(
                "flow:failed",
                {"flowMetadata": meta, "error": ErrorInfo(error_message), "executionTime": elapsed},
            )
        elif self._unhandled is not None:
            status = FAILED
            error_node, message = self._unhandled
            error_message = f"Node '{error_node}' failed: {message}"
            self._emit(
                "flow:failed",
                {
                    "flowMetadata": meta,
                    "error": ErrorInfo(error_message),
                    "errorNodeId": error_node,
                    "executionTime": elapsed,
                },
            )
        else:
            self._emit("flow:completed", {"flowMetadata": meta, "executionTime": elapsed})
        self._finished = True
        return EngineResult(
            status=status,
            error_message=error_message,
            error_node_id=error_node,
            outputs=self._collect_outputs() if status == COMPLETED else {},
            emitted=list(self._emitted),
            next_index=self._index,
            duration_ms=elapsed,
        )

    def _on_flow_timeout(self) -> None:
        self._timed_out = True
        self._wake.set()

    async def _loop(self) -> str:
        control = self.control
        while True:
            if control.stop_reason is not None:
                await self._cancel_running()
                return STOPPED
            if self._timed_out:
                await self._cancel_running()
                return FAILED
            self._drain_done()
            self._update_pause_state()
            self._start_ready()
            if not self._running and not self._done:
                if not self._ready:
                    return COMPLETED
                if not self._paused:
                    continue  # a breakpoint or pause just took effect; re-evaluate
            self._wake.clear()
            if self._done or (self._ready and self._can_start()):
                continue
            await self._wake.wait()

    def _can_start(self) -> bool:
        if self._paused:
            return self._step_budget > 0 and len(self._running) < self._max_concurrency
        return self.control.pause_reason is None and len(self._running) < self._max_concurrency

    def _update_pause_state(self) -> None:
        control = self.control
        if not self._paused:
            if control.pause_reason is not None and not self._running:
                if not self._ready:
                    return  # nothing left to pause before: the run is about to complete
                self._enter_pause(control.pause_reason)
            return
        # paused
        if control.pause_reason is None:
            self._leave_pause("resume")
            return
        if self._stepping:
            if self._step_budget == 0 and not self._running:
                self._stepping = False
                if self._ready:  # nothing left: the run completes instead of pausing
                    self._emit("flow:paused", {"flowMetadata": self.flow.metadata_json, "reason": "step"})
                    self._pause_emitted = True
            return
        if control.step_requests > 0 and self._ready:
            control.step_requests -= 1
            self._stepping = True
            self._step_budget = len(self._ready)
            self._pause_emitted = False
            self._emit("flow:resumed", {"flowMetadata": self.flow.metadata_json, "reason": "step"})
            for st in self._ready:
                self._passed_breakpoints.add(st.compiled.id)

    def _enter_pause(self, reason: str) -> None:
        self._paused = True
        self._pause_emitted = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._remaining_s = max(0.0, self._deadline - asyncio.get_running_loop().time())
        data: dict[str, Any] = {"flowMetadata": self.flow.metadata_json, "reason": reason}
        self._emit("flow:paused", data)

    def _leave_pause(self, reason: str) -> None:
        self._paused = False
        self._stepping = False
        self._step_budget = 0
        for st in self._ready:
            if st.compiled.id in self.control.breakpoints:
                self._passed_breakpoints.add(st.compiled.id)
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self._remaining_s
        self._timer = loop.call_at(self._deadline, self._on_flow_timeout)
        self._emit("flow:resumed", {"flowMetadata": self.flow.metadata_json, "reason": reason})

    def _start_ready(self) -> None:
        ready = self._ready
        control = self.control
        while ready and self._can_start():
            st = ready[0]
            nid = st.compiled.id
            if not self._paused and nid in control.breakpoints and nid not in self._passed_breakpoints:
                self._emit("debug:breakpoint-hit", {"node": self._snapshot(st), "nodeId": nid})
                control.pause(f"breakpoint at node '{nid}'")
                self._passed_breakpoints.add(nid)
                return
            ready.popleft()
            if self._paused:
                self._step_budget -= 1
            self._start(st)

    def _start(self, st: NodeState) -> None:
        cn = st.compiled
        self._set_status(st, _S_EXECUTING)
        self._emit("node:started", {"node": self._snapshot(st)})
        inputs = dict(cn.defaults)
        edges = self.flow.edges
        states = self._states
        for port, ei in st.chosen.items():
            edge = edges[ei]
            wire = edge.wire
            t0 = time.perf_counter()
            self._emit("edge:transfer-started", {"serializedEdge": wire})
            source = states[edge.source]
            assert source is not None
            value = source.outputs.get(edge.edge.source_port_id)
            spec = cn.ports[port]
            if value is None and spec.required:
                message = (
                    f"required input '{cn.id}.{port}' received no value from "
                    f"'{edge.edge.source_node_id}.{edge.edge.source_port_id}'"
                )
                self._emit(
                    "edge:transfer-failed",
                    {"serializedEdge": {**wire, "status": "error"}, "error": ErrorInfo(message)},
                )
                self._skip(st, "edge transfer failed")
                return
            inputs[port] = value
            self._emit(
                "edge:transfer-completed",
                {"serializedEdge": wire, "transferTime": (time.perf_counter() - t0) * 1000},
            )
        for port, spec in cn.ports.items():
            if spec.required and spec.direction is Direction.INPUT and inputs.get(port) is None:
                self._skip(st, f"required input '{port}' has no value")
                return
        if cn.cls.flow_ports and inputs.get(EXECUTE_PORT) is False:
            self._skip(st, "node skipped because __execute is false")
            return
        ctx = NodeContext(self, st, inputs)
        st.ctx = ctx
        st.started_at = time.perf_counter()
        instance = cn.cls(cn.node)
        self._running.add(st)
        st.task = asyncio.create_task(self._execute(st, instance, ctx), name=f"node:{cn.id}")

    def _skip(self, st: NodeState, reason: str) -> None:
        self._set_status(st, _S_SKIPPED)
        self._emit("node:skipped", {"nodeId": st.compiled.id, "reason": reason})

    async def _execute(self, st: NodeState, instance: Node, ctx: NodeContext) -> None:
        scope = asyncio.timeout(self._node_timeout_s)
        try:
            async with scope:
                result = await instance.execute(ctx)
                if st.follow_ups:
                    await asyncio.gather(*st.follow_ups)
            if result:
                for port, value in result.items():
                    self.check_output_port(st, port)
                    ctx.outputs[port] = value
        except TimeoutError as exc:
            if scope.expired():
                ms = self.options.execution.node_timeout_ms
                st.error = f"Node {st.compiled.id} execution timed out after {ms} ms."
            else:
                st.error = str(exc) or "TimeoutError"
        except asyncio.CancelledError:
            if self._finished or self.control.stop_reason is not None or self._timed_out:
                raise
            st.error = "node was cancelled"
        except Exception as exc:  # noqa: BLE001 - any error of a node body fails that node
            st.error = str(exc) or type(exc).__name__
        finally:
            self._done.append(st)
            self._wake.set()

    def _drain_done(self) -> None:
        done = self._done
        while done:
            st = done.pop(0)
            self._running.discard(st)
            self._finish(st)

    def _finish(self, st: NodeState) -> None:
        cn = st.compiled
        ctx = st.ctx
        assert ctx is not None
        elapsed = (time.perf_counter() - st.started_at) * 1000
        outputs = ctx.outputs
        for value in outputs.values():
            if isinstance(value, StreamChannel) and not value.closed:
                value.close()
        if st.error is None:
            st.outputs.update(outputs)
            st.outputs[SUCCESS_PORT] = True
            st.outputs[ERROR_PORT] = False
            self._set_status(st, _S_COMPLETED)
            shown = outputs
            if cn.secret_outputs and not cn.secret_outputs.isdisjoint(outputs):
                shown = {k: ("***" if k in cn.secret_outputs else v) for k, v in outputs.items()}
            self._emit(
                "node:completed",
                {"node": self._snapshot(st), "outputs": shown, "executionTime": elapsed},
            )
            withheld = st.withheld
            for port, spec in cn.ports.items():
                if (
                    spec.direction is Direction.OUTPUT
                    and port not in st.resolved
                    and port != ERROR_PORT
                    and port != ERROR_MESSAGE_PORT
                    and (withheld is None or port not in withheld)
                ):
                    self._resolve(st, port)
        else:
            st.outputs[SUCCESS_PORT] = False
            st.outputs[ERROR_PORT] = True
            st.outputs[ERROR_MESSAGE_PORT] = st.error
            self._set_status(st, _S_ERROR)
            self._emit(
                "node:failed",
                {"node": self._snapshot(st), "error": ErrorInfo(st.error), "executionTime": elapsed},
            )
            if cn.handles_error:
                self._resolve(st, ERROR_PORT)
                self._resolve(st, ERROR_MESSAGE_PORT)
            elif self._unhandled is None:
                self._unhandled = (cn.id, st.error)
        st.ctx = None
        st.task = None

    async def _cancel_running(self) -> None:
        tasks = [st.task for st in self._running if st.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
        self._done.clear()

    def _collect_outputs(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for st in self._states:
            if st is None or st.status != _S_COMPLETED or not st.compiled.is_sink:
                continue
            values = {
                k: v
                for k, v in st.outputs.items()
                if k not in SYSTEM_PORTS and not isinstance(v, StreamChannel)
            }
            if values:
                result[st.compiled.id] = values
        return result
