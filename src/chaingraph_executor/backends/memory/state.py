"""The one in-memory state shared by every memory store, so that ``create``/``finish`` change
executions and events together (no await inside a change: each change is atomic in asyncio)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from chaingraph_executor.backends.common import as_utc
from chaingraph_executor.backends.subscription import EVENTS_CHANNEL, WakeupHub
from chaingraph_executor.domain.events import ExecutionEvent, from_json_safe, to_json_safe
from chaingraph_executor.domain.execution import Execution
from chaingraph_executor.domain.flow import Flow
from chaingraph_executor.errors import Conflict
from chaingraph_executor.ports import Control, StoredFlow, User, WorkerInfo


def json_copy(value: Any) -> Any:
    """What a round trip through the SQL backend's JSON columns gives back (also a deep copy)."""
    return from_json_safe(to_json_safe(value))


def copy_execution(e: Execution) -> Execution:
    return replace(
        e,
        created_at=as_utc(e.created_at),
        updated_at=as_utc(e.updated_at),
        started_at=None if e.started_at is None else as_utc(e.started_at),
        completed_at=None if e.completed_at is None else as_utc(e.completed_at),
        options=json_copy(e.options),
        integration=json_copy(e.integration),
        external_events=json_copy(e.external_events),
        outputs=None if e.outputs is None else json_copy(e.outputs),
    )


def copy_event(ev: ExecutionEvent) -> ExecutionEvent:
    data = json_copy(ev.data)
    return ExecutionEvent(ev.index, ev.type, as_utc(ev.timestamp), data if isinstance(data, dict) else {})


@dataclass(slots=True)
class EventStream:
    """The events of one execution, ordered by seq."""

    seqs: list[int] = field(default_factory=list)
    events: list[ExecutionEvent] = field(default_factory=list)

    def has(self, seq: int) -> bool:
        i = bisect_left(self.seqs, seq)
        return i < len(self.seqs) and self.seqs[i] == seq

    def add(self, ev: ExecutionEvent) -> None:
        seq = ev.index + 1
        if not self.seqs or seq > self.seqs[-1]:
            self.seqs.append(seq)
            self.events.append(ev)
            return
        i = bisect_left(self.seqs, seq)
        self.seqs.insert(i, seq)
        self.events.insert(i, ev)

    def start(self, from_seq: int) -> int:
        return bisect_left(self.seqs, from_seq)


@dataclass(slots=True)
class UserRecord:
    user: User
    token_hash: str
    revoked_at: datetime | None = None


class MemoryState:
    """Everything the memory backend stores, plus the in-process wake-up hub."""

    def __init__(self) -> None:
        self.hub = WakeupHub()
        self.flows: dict[str, StoredFlow] = {}
        self.flow_versions: dict[tuple[str, int], tuple[Flow, datetime]] = {}
        self.executions: dict[str, Execution] = {}
        self.controls: dict[str, Control] = {}
        self.streams: dict[str, EventStream] = {}
        self.users: dict[str, UserRecord] = {}
        self.workers: dict[str, WorkerInfo] = {}

    def check_new_events(self, execution_id: str, events: Sequence[ExecutionEvent]) -> None:
        seqs = [ev.index + 1 for ev in events]
        stream = self.streams.get(execution_id)
        if len(set(seqs)) != len(seqs) or (stream is not None and any(stream.has(s) for s in seqs)):
            raise Conflict(
                f"event seq already stored for execution {execution_id} (batch seq {min(seqs)}..{max(seqs)})",
                execution_id=execution_id,
            )

    def add_events(self, execution_id: str, events: Sequence[ExecutionEvent]) -> None:
        """Store a checked batch and wake the subscribers once."""
        if not events:
            return
        stream = self.streams.setdefault(execution_id, EventStream())
        for ev in events:
            stream.add(copy_event(ev))
        self.hub.wake(EVENTS_CHANNEL, execution_id)
