"""``InMemoryEventLog``: the event log over ``MemoryState`` with the shared subscription loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager

from chaingraph_executor.backends.memory.state import MemoryState, copy_event
from chaingraph_executor.backends.subscription import DEFAULT_POLL_INTERVAL_S, LogRow, Subscription
from chaingraph_executor.domain.events import ExecutionEvent


class InMemoryEventLog:
    def __init__(self, state: MemoryState, *, poll_interval_s: float = DEFAULT_POLL_INTERVAL_S) -> None:
        self._state = state
        self._poll_interval_s = poll_interval_s

    async def append(self, execution_id: str, events: Sequence[ExecutionEvent]) -> None:
        if not events:
            return
        self._state.check_new_events(execution_id, events)
        self._state.add_events(execution_id, events)

    async def read(
        self, execution_id: str, from_seq: int, *, limit: int, types: frozenset[str] | None = None
    ) -> list[ExecutionEvent]:
        stream = self._state.streams.get(execution_id)
        if stream is None or limit <= 0:
            return []
        out: list[ExecutionEvent] = []
        for ev in stream.events[stream.start(from_seq) :]:
            if types is None or ev.type in types:
                out.append(copy_event(ev))
                if len(out) >= limit:
                    break
        return out

    async def last_seq(self, execution_id: str) -> int:
        stream = self._state.streams.get(execution_id)
        return stream.seqs[-1] if stream and stream.seqs else -1

    def subscribe(
        self,
        execution_id: str,
        from_seq: int,
        *,
        types: frozenset[str] | None = None,
        batch_size: int = 100,
        batch_timeout_ms: int = 25,
        poll_interval_s: float | None = None,
    ) -> AbstractAsyncContextManager[AsyncIterator[list[ExecutionEvent]]]:
        return Subscription(
            self,
            self._state.hub,
            execution_id,
            from_seq,
            types=types,
            batch_size=batch_size,
            batch_timeout_ms=batch_timeout_ms,
            poll_interval_s=self._poll_interval_s if poll_interval_s is None else poll_interval_s,
        )

    # -- EventSource (for Subscription) ---------------------------------------------------

    async def read_rows(
        self, execution_id: str, from_seq: int, limit: int, types: frozenset[str] | None
    ) -> list[LogRow]:
        stream = self._state.streams.get(execution_id)
        if stream is None:
            return []
        start = stream.start(from_seq)
        return [
            LogRow(ev.seq, ev.type, copy_event(ev) if types is None or ev.type in types else None)
            for ev in stream.events[start : start + limit]
        ]

    async def is_finished(self, execution_id: str) -> bool:
        execution = self._state.executions.get(execution_id)
        return execution is not None and execution.status.terminal
