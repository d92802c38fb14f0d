"""``ExecutorClient``: every procedure of a chaingraph-executor server as a typed async method."""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel

from chaingraph_executor.client import _calls as calls
from chaingraph_executor.client._calls import Call, FlowSource
from chaingraph_executor.client._errors import ExecutorClientError, TransportError
from chaingraph_executor.client._flows import apply_inputs
from chaingraph_executor.client._models import (
    Event,
    Execution,
    ExecutionTreeNode,
    FlowPage,
    FlowRecord,
    Identity,
    RootExecution,
    RunResult,
    UploadedFlow,
)
from chaingraph_executor.client._wire import (
    HttpWire,
    Outcome,
    ReconnectPolicy,
    Subscription,
    SubscriptionTransport,
    normalize_base_url,
)
from chaingraph_executor.trpc.superjson import UNDEFINED

T = TypeVar("T")

DEFAULT_SERVER = "http://127.0.0.1:4021"

#: ``on_event`` of :meth:`ExecutorClient.run`: a plain function or a coroutine function
EventCallback = Callable[[Event], Awaitable[None] | None]


class ExecutorClient:
    """An async client of a chaingraph-executor server.

    ``base_url`` is the server's root (``http://127.0.0.1:4021``; a trailing ``/trpc`` is
    accepted). ``token`` is sent as ``Authorization: Bearer`` on HTTP and in the WebSocket
    ``connectionParams``. ``transport`` replaces httpx's network transport (for example
    ``httpx.ASGITransport(app=...)`` to talk to an app in the same process).

    Subscriptions (``subscriptions``): ``"websocket"`` (one socket per subscription), ``"sse"``
    (Server-Sent Events over HTTP), or ``"auto"`` — WebSocket, except when a ``transport`` is
    given: a WebSocket cannot go through an httpx transport, so SSE is used through it.
    Both resume after a dropped connection from the last event seen (``reconnect`` policy).

    Use it as ``async with ExecutorClient(...) as client:`` or call :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_SERVER,
        *,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        subscriptions: SubscriptionTransport = "auto",
        reconnect: ReconnectPolicy | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.token = token or None
        self.subscriptions: SubscriptionTransport = (
            ("sse" if transport is not None else "websocket") if subscriptions == "auto" else subscriptions
        )
        self.reconnect = reconnect or ReconnectPolicy()
        self._wire = HttpWire(
            self.base_url, token=self.token, transport=transport, timeout=timeout, headers=headers
        )

    async def __aenter__(self) -> ExecutorClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._wire.aclose()

    def __repr__(self) -> str:
        return f"ExecutorClient({self.base_url!r})"

    # ------------------------------------------------------------------ generic calls
    async def query(self, path: str, input: Any = UNDEFINED) -> Any:
        """Call any query procedure; returns its decoded output."""
        return await self._wire.call(calls.raw("query", path, input))

    async def mutation(self, path: str, input: Any = UNDEFINED) -> Any:
        """Call any mutation procedure; returns its decoded output."""
        return await self._wire.call(calls.raw("mutation", path, input))

    def batch(self) -> Batch:
        """Several calls in one HTTP request::

        async with client.batch() as batch:
            details = batch.get_execution_details(execution_id)
            me = batch.whoami()
        print(details.result().status, me.result().user_id)
        """
        return Batch(self._wire)

    # ------------------------------------------------------------------ executions
    async def create(
        self,
        flow_id: str,
        *,
        options: Mapping[str, Any] | BaseModel | None = None,
        integration: Mapping[str, Any] | None = None,
        events: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """Create an execution of the flow's latest version; returns its id. It waits for
        :meth:`start`. ``options``: ``{"execution": {"maxConcurrency", "nodeTimeoutMs",
        "flowTimeoutMs"}, "debug", "breakpoints": [node ids]}``; ``events``: external events
        ``[{"eventName", "payload"}]`` that start listener nodes."""
        return await self._wire.call(
            calls.create(flow_id, options=options, integration=integration, events=events)
        )

    async def start(self, execution_id: str) -> None:
        """Start a created execution."""
        await self._wire.call(calls.start(execution_id))

    async def stop(self, execution_id: str, reason: str | None = None) -> None:
        """Stop an execution (and its children); returns once it is stopped."""
        await self._wire.call(calls.stop(execution_id, reason))

    async def pause(self, execution_id: str, reason: str | None = None) -> None:
        """Pause a running execution: running nodes finish, no new node starts."""
        await self._wire.call(calls.pause(execution_id, reason))

    async def resume(self, execution_id: str) -> None:
        """Resume a paused execution."""
        await self._wire.call(calls.resume(execution_id))

    async def step(self, execution_id: str) -> None:
        """Let a paused execution start one more node."""
        await self._wire.call(calls.step(execution_id))

    async def set_breakpoints(self, execution_id: str, node_ids: Sequence[str]) -> list[str]:
        """Replace the execution's breakpoints (the run pauses before these nodes start)."""
        return await self._wire.call(calls.set_breakpoints(execution_id, node_ids))

    async def get_execution_details(self, execution_id: str) -> Execution:
        return await self._wire.call(calls.get_execution_details(execution_id))

    async def get_executions_tree(self, execution_id: str) -> list[ExecutionTreeNode]:
        """The root execution and every child below it (the root first, level 0)."""
        return await self._wire.call(calls.get_executions_tree(execution_id))

    async def get_root_executions(
        self,
        flow_id: str,
        *,
        limit: int | None = None,
        after: datetime | None = None,
        after_id: str | None = None,
    ) -> list[RootExecution]:
        """Root executions of a flow, newest first; page with ``after``/``after_id`` of the last one."""
        return await self._wire.call(
            calls.get_root_executions(flow_id, limit=limit, after=after, after_id=after_id)
        )

    def subscribe_to_execution_events(
        self,
        execution_id: str,
        *,
        from_index: int = 0,
        event_types: Sequence[str] | None = None,
        batch_size: int | None = None,
        batch_timeout_ms: int | None = None,
    ) -> EventStream:
        """The execution's events as an async iterator, ending after the terminal event.

        ``from_index`` is a stream position (``seq``): 0 starts with ``execution:created``,
        ``n`` with the event whose ``index`` is ``n - 1``. ``event_types`` filters by type.
        A dropped connection is resumed after the last event received (no gap, no duplicate).
        Use it as ``async with client.subscribe_to_execution_events(eid) as events:`` (or
        ``async for`` over it directly and call :meth:`EventStream.aclose` when leaving early).
        """
        payload: dict[str, Any] = {"executionId": execution_id, "fromIndex": from_index}
        if event_types:
            payload["eventTypes"] = list(event_types)
        if batch_size is not None:
            payload["batchSize"] = batch_size
        if batch_timeout_ms is not None:
            payload["batchTimeoutMs"] = batch_timeout_ms
        mode: Literal["websocket", "sse"] = "sse" if self.subscriptions == "sse" else "websocket"
        subscription = Subscription(
            self._wire, "subscribeToExecutionEvents", payload, self.token, mode, self.reconnect
        )
        return EventStream(subscription, from_index)

    # ------------------------------------------------------------------ flows
    async def upload_flow(self, flow: FlowSource) -> UploadedFlow:
        """Store a flow (a JSON document, or the path of a JSON file); an existing id gets a new
        version. An invalid flow raises ``RemoteError`` ``BAD_REQUEST`` with every problem in
        ``problems``."""
        return await self._wire.call(calls.upload_flow(flow))

    async def get_flow(self, flow_id: str, version: int | None = None) -> FlowRecord:
        """A stored flow with its document (the latest version unless ``version``)."""
        return await self._wire.call(calls.get_flow(flow_id, version))

    async def list_flows(self, *, limit: int | None = None, cursor: str | None = None) -> FlowPage:
        """Your flows (every flow for an admin), one page at a time."""
        return await self._wire.call(calls.list_flows(limit=limit, cursor=cursor))

    async def delete_flow(self, flow_id: str) -> None:
        await self._wire.call(calls.delete_flow(flow_id))

    async def whoami(self) -> Identity:
        return await self._wire.call(calls.whoami())

    # ------------------------------------------------------------------ the whole run
    async def run(
        self,
        flow: FlowSource,
        inputs: Mapping[str, Any] | None = None,
        on_event: EventCallback | None = None,
        *,
        options: Mapping[str, Any] | BaseModel | None = None,
        stop_on_cancel: bool = True,
    ) -> RunResult:
        """Upload ``flow``, create an execution, subscribe, start it and wait for its end.

        ``inputs`` overrides node inputs before the upload: ``{"nodeId.port": value}``
        (``ValueError`` for an unknown node). ``on_event`` is called with every event as it
        arrives (a plain or a coroutine function). If the call is cancelled or ``on_event``
        raises, the execution is stopped (``stop_on_cancel``) and the error propagates.
        """
        document = calls.load_flow(flow)
        if inputs:
            document = apply_inputs(document, inputs)
        uploaded = await self.upload_flow(document)
        execution_id = await self.create(uploaded.flow_id, options=options)
        events: list[Event] = []
        try:
            async with self.subscribe_to_execution_events(execution_id) as stream:
                await self.start(execution_id)
                async for event in stream:
                    events.append(event)
                    if on_event is not None:
                        outcome = on_event(event)
                        if inspect.isawaitable(outcome):
                            await outcome
        except BaseException:
            if stop_on_cancel:
                await self._stop_quietly(execution_id)
            raise
        details = await self.get_execution_details(execution_id)
        return RunResult(
            status=details.status,
            outputs=dict(details.outputs or {}),
            execution_id=execution_id,
            error=details.error_message,
            error_node_id=details.error_node_id,
            events=events,
        )

    async def _stop_quietly(self, execution_id: str) -> None:
        async def stop() -> None:
            try:
                await asyncio.wait_for(self.stop(execution_id, "Client cancelled the run"), 10)
            except (ExecutorClientError, TimeoutError):
                pass

        # Shielded: the stop must reach the server even while this task is being cancelled.
        task = asyncio.ensure_future(stop())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await task


class EventStream:
    """The events of one execution, in order, without gaps or duplicates across reconnects.

    An async iterator of :class:`Event` that ends after the terminal event
    (``flow:completed``, ``flow:failed`` or ``flow:cancelled``); also an async context manager
    that closes the connection on exit.
    """

    def __init__(self, subscription: Subscription, from_index: int) -> None:
        self._subscription = subscription
        self._values: AsyncIterator[Any] | None = None
        self._buffer: deque[Event] = deque()
        self._next_seq = max(0, from_index)  # of the next event to accept from the wire
        self._last_seq: int | None = None  # of the last event handed out
        self._finished = False

    @property
    def last_seq(self) -> int | None:
        """The position (``seq``) of the last event delivered; resume with ``from_index=last_seq + 1``."""
        return self._last_seq

    @property
    def reconnects(self) -> int:
        """How many times the connection was re-established (and the stream resumed)."""
        return self._subscription.reconnects

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._buffer:
            if self._finished:
                raise StopAsyncIteration
            if self._values is None:
                self._values = aiter(self._subscription)
            try:
                batch = await anext(self._values)
            except StopAsyncIteration:
                self._finished = True
                await self.aclose()
                raise
            for raw in batch if isinstance(batch, list) else [batch]:
                event = Event.from_wire(raw)
                if event.seq < self._next_seq:
                    continue  # already delivered (a duplicate after a resume)
                self._next_seq = event.seq + 1
                self._buffer.append(event)
                if event.terminal:
                    self._finished = True
                    break
        event = self._buffer.popleft()
        self._last_seq = event.seq
        if self._finished and not self._buffer:
            await self.aclose()
        return event

    async def aclose(self) -> None:
        """Close the connection (leaving the stream early)."""
        values, self._values = self._values, None
        self._finished = True
        if values is not None:
            aclose = getattr(values, "aclose", None)
            if aclose is not None:
                await aclose()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class Pending(Generic[T]):
    """The future result of one call in a :class:`Batch`; read it with :meth:`result` after the
    batch was sent."""

    def __init__(self, call: Call[T]) -> None:
        self.call = call
        self._outcome: Outcome | None = None

    @property
    def done(self) -> bool:
        return self._outcome is not None

    @property
    def error(self) -> ExecutorClientError | None:
        return self._outcome.error if self._outcome is not None else None

    def result(self) -> T:
        """The call's result; raises its ``RemoteError`` if it failed."""
        if self._outcome is None:
            raise RuntimeError(f"the batch holding {self.call.path} was not sent yet")
        if self._outcome.error is not None:
            raise self._outcome.error
        value: T = self._outcome.value
        return value

    def __repr__(self) -> str:
        state = "pending" if self._outcome is None else ("failed" if self.error else "done")
        return f"<Pending {self.call.path} {state}>"


class Batch:
    """Calls collected and sent together: the queries in one ``GET ...?batch=1`` request, the
    mutations in one ``POST ...?batch=1`` request (tRPC does not mix both in one request; the
    mutations are sent first). The server runs the calls of a request concurrently, in no
    particular order. Each method returns a :class:`Pending`; the batch is sent when the
    ``async with`` block ends (or by :meth:`send`); a failed call fails only its own
    ``Pending``."""

    def __init__(self, wire: HttpWire) -> None:
        self._wire = wire
        self._pending: list[Pending[Any]] = []

    def __len__(self) -> int:
        return len(self._pending)

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            await self.send()

    async def send(self) -> None:
        """Send the calls collected so far (at most one request per kind)."""
        todo = [p for p in self._pending if not p.done]
        for kind in ("mutation", "query"):
            group = [p for p in todo if p.call.kind == kind]
            if not group:
                continue
            try:
                outcomes = await self._wire.send([p.call for p in group])
            except TransportError as exc:
                outcomes = [Outcome(error=exc) for _ in group]
            for pending, outcome in zip(group, outcomes, strict=True):
                pending._outcome = outcome

    def _add(self, call: Call[T]) -> Pending[T]:
        pending = Pending(call)
        self._pending.append(pending)
        return pending

    def query(self, path: str, input: Any = UNDEFINED) -> Pending[Any]:
        return self._add(calls.raw("query", path, input))

    def mutation(self, path: str, input: Any = UNDEFINED) -> Pending[Any]:
        return self._add(calls.raw("mutation", path, input))

    def create(
        self,
        flow_id: str,
        *,
        options: Mapping[str, Any] | BaseModel | None = None,
        integration: Mapping[str, Any] | None = None,
        events: Sequence[Mapping[str, Any]] | None = None,
    ) -> Pending[str]:
        return self._add(calls.create(flow_id, options=options, integration=integration, events=events))

    def start(self, execution_id: str) -> Pending[None]:
        return self._add(calls.start(execution_id))

    def stop(self, execution_id: str, reason: str | None = None) -> Pending[None]:
        return self._add(calls.stop(execution_id, reason))

    def pause(self, execution_id: str, reason: str | None = None) -> Pending[None]:
        return self._add(calls.pause(execution_id, reason))

    def resume(self, execution_id: str) -> Pending[None]:
        return self._add(calls.resume(execution_id))

    def step(self, execution_id: str) -> Pending[None]:
        return self._add(calls.step(execution_id))

    def set_breakpoints(self, execution_id: str, node_ids: Sequence[str]) -> Pending[list[str]]:
        return self._add(calls.set_breakpoints(execution_id, node_ids))

    def get_execution_details(self, execution_id: str) -> Pending[Execution]:
        return self._add(calls.get_execution_details(execution_id))

    def get_executions_tree(self, execution_id: str) -> Pending[list[ExecutionTreeNode]]:
        return self._add(calls.get_executions_tree(execution_id))

    def get_root_executions(
        self,
        flow_id: str,
        *,
        limit: int | None = None,
        after: datetime | None = None,
        after_id: str | None = None,
    ) -> Pending[list[RootExecution]]:
        return self._add(calls.get_root_executions(flow_id, limit=limit, after=after, after_id=after_id))

    def upload_flow(self, flow: FlowSource) -> Pending[UploadedFlow]:
        return self._add(calls.upload_flow(flow))

    def get_flow(self, flow_id: str, version: int | None = None) -> Pending[FlowRecord]:
        return self._add(calls.get_flow(flow_id, version))

    def list_flows(self, *, limit: int | None = None, cursor: str | None = None) -> Pending[FlowPage]:
        return self._add(calls.list_flows(limit=limit, cursor=cursor))

    def delete_flow(self, flow_id: str) -> Pending[None]:
        return self._add(calls.delete_flow(flow_id))

    def whoami(self) -> Pending[Identity]:
        return self._add(calls.whoami())


__all__ = [
    "DEFAULT_SERVER",
    "Batch",
    "EventCallback",
    "EventStream",
    "ExecutorClient",
    "Pending",
]
