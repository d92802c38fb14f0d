"""``SyncExecutorClient``: the async client for scripts without ``asyncio``.

It runs an :class:`ExecutorClient` on an event loop of its own, in a background thread, and
waits for each call. Do not use it from inside a running event loop's thread for a server that
runs on that same loop (the call would block the loop it waits for); use the async client there.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from chaingraph_executor.client._calls import FlowSource
from chaingraph_executor.client._client import DEFAULT_SERVER, EventStream, ExecutorClient
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
from chaingraph_executor.client._wire import ReconnectPolicy, SubscriptionTransport
from chaingraph_executor.trpc.superjson import UNDEFINED

T = TypeVar("T")

__all__ = ["SyncEventStream", "SyncExecutorClient"]


class SyncExecutorClient:
    """The blocking twin of :class:`ExecutorClient` (same methods, same arguments)::

    with SyncExecutorClient("http://127.0.0.1:4021") as client:
        result = client.run("examples/hello-world.json")
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
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaingraph-client", daemon=True)
        self._thread.start()
        self._closed = False

        async def make() -> ExecutorClient:
            return ExecutorClient(
                base_url,
                token=token,
                transport=transport,
                timeout=timeout,
                headers=headers,
                subscriptions=subscriptions,
                reconnect=reconnect,
            )

        self._client = self._wait(make())
        self.base_url = self._client.base_url

    def _wait(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._wait(self._client.aclose())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def __enter__(self) -> SyncExecutorClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SyncExecutorClient({self.base_url!r})"

    # ------------------------------------------------------------------ calls
    def query(self, path: str, input: Any = UNDEFINED) -> Any:
        return self._wait(self._client.query(path, input))

    def mutation(self, path: str, input: Any = UNDEFINED) -> Any:
        return self._wait(self._client.mutation(path, input))

    def create(
        self,
        flow_id: str,
        *,
        options: Mapping[str, Any] | BaseModel | None = None,
        integration: Mapping[str, Any] | None = None,
        events: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        return self._wait(
            self._client.create(flow_id, options=options, integration=integration, events=events)
        )

    def start(self, execution_id: str) -> None:
        self._wait(self._client.start(execution_id))

    def stop(self, execution_id: str, reason: str | None = None) -> None:
        self._wait(self._client.stop(execution_id, reason))

    def pause(self, execution_id: str, reason: str | None = None) -> None:
        self._wait(self._client.pause(execution_id, reason))

    def resume(self, execution_id: str) -> None:
        self._wait(self._client.resume(execution_id))

    def step(self, execution_id: str) -> None:
        self._wait(self._client.step(execution_id))

    def set_breakpoints(self, execution_id: str, node_ids: Sequence[str]) -> list[str]:
        return self._wait(self._client.set_breakpoints(execution_id, node_ids))

    def get_execution_details(self, execution_id: str) -> Execution:
        return self._wait(self._client.get_execution_details(execution_id))

    def get_executions_tree(self, execution_id: str) -> list[ExecutionTreeNode]:
        return self._wait(self._client.get_executions_tree(execution_id))

    def get_root_executions(
        self,
        flow_id: str,
        *,
        limit: int | None = None,
        after: datetime | None = None,
        after_id: str | None = None,
    ) -> list[RootExecution]:
        return self._wait(
            self._client.get_root_executions(flow_id, limit=limit, after=after, after_id=after_id)
        )

    def subscribe_to_execution_events(
        self,
        execution_id: str,
        *,
        from_index: int = 0,
        event_types: Sequence[str] | None = None,
        batch_size: int | None = None,
        batch_timeout_ms: int | None = None,
    ) -> SyncEventStream:
        stream = self._client.subscribe_to_execution_events(
            execution_id,
            from_index=from_index,
            event_types=event_types,
            batch_size=batch_size,
            batch_timeout_ms=batch_timeout_ms,
        )
        return SyncEventStream(stream, self._wait)

    def upload_flow(self, flow: FlowSource) -> UploadedFlow:
        return self._wait(self._client.upload_flow(flow))

    def get_flow(self, flow_id: str, version: int | None = None) -> FlowRecord:
        return self._wait(self._client.get_flow(flow_id, version))

    def list_flows(self, *, limit: int | None = None, cursor: str | None = None) -> FlowPage:
        return self._wait(self._client.list_flows(limit=limit, cursor=cursor))

    def delete_flow(self, flow_id: str) -> None:
        self._wait(self._client.delete_flow(flow_id))

    def whoami(self) -> Identity:
        return self._wait(self._client.whoami())

    def run(
        self,
        flow: FlowSource,
        inputs: Mapping[str, Any] | None = None,
        on_event: Callable[[Event], Awaitable[None] | None] | None = None,
        *,
        options: Mapping[str, Any] | BaseModel | None = None,
    ) -> RunResult:
        """Like :meth:`ExecutorClient.run`; ``on_event`` is called on the client's thread."""
        return self._wait(self._client.run(flow, inputs, on_event, options=options))


class SyncEventStream:
    """A blocking iterator of :class:`Event` (ends after the terminal event)."""

    def __init__(self, stream: EventStream, wait: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._stream = stream
        self._wait = wait

    @property
    def last_seq(self) -> int | None:
        return self._stream.last_seq

    @property
    def reconnects(self) -> int:
        return self._stream.reconnects

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        async def step() -> Event | None:
            try:
                return await anext(self._stream)
            except StopAsyncIteration:
                return None

        event: Event | None = self._wait(step())
        if event is None:
            raise StopIteration
        return event

    def close(self) -> None:
        self._wait(self._stream.aclose())

    def __enter__(self) -> SyncEventStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
