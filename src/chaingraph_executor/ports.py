"""Ports: what the services need from storage and messaging, as Protocols.

Ports speak domain models, never rows. Implementations live in ``backends/`` (``memory``,
``sql``, ``dbos``) and are async context managers entered by ``bootstrap``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from chaingraph_executor.domain.events import ExecutionEvent
from chaingraph_executor.domain.execution import Execution, ExecutionStatus
from chaingraph_executor.domain.flow import Flow


@dataclass(frozen=True, slots=True)
class StoredFlow:
    flow: Flow
    owner_id: str
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FlowPage:
    items: list[StoredFlow]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RootExecution:
    execution: Execution
    levels: int  # max depth below the root (0 when it has no children)
    total_nested: int  # number of descendants (the root itself not counted)


@dataclass(frozen=True, slots=True)
class TreeNode:
    id: str
    parent_id: str | None
    level: int
    execution: Execution


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A compare-and-set status change. ``expected`` lists the statuses it may come from."""

    status: ExecutionStatus
    expected: frozenset[ExecutionStatus]
    error_message: str | None = None
    error_node_id: str | None = None
    outputs: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Control:
    """The durable desired state of an execution (the control channel).

    ``wait``: a root execution created and waiting for ``start`` (which makes it ``run``);
    ``run`` / ``pause``: set by the commands; ``stop``: final."""

    state: str = "run"  # "wait" | "run" | "pause" | "stop"
    reason: str | None = None
    breakpoints: tuple[str, ...] = ()
    step_seq: int = 0  # incremented by every `step` command
    version: int = 0  # incremented by every change


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    is_admin: bool
    created_at: datetime
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    executor_id: str
    started_at: datetime
    heartbeat_at: datetime
    info: dict[str, Any] = field(default_factory=dict)


class FlowStore(Protocol):
    async def save(self, flow: Flow, owner_id: str) -> StoredFlow:
        """Insert a flow (version 1) or add a new version when the id exists."""

    async def get(self, flow_id: str, version: int | None = None) -> StoredFlow | None: ...

    async def list(self, owner_id: str | None, *, limit: int, cursor: str | None) -> FlowPage:
        """Flows of one owner (all owners when ``None``), newest update first, keyset paginated."""

    async def delete(self, flow_id: str) -> bool: ...


#: A step another backend runs inside a store's transaction, given the store's connection (opaque
#: here): the durable workflow enqueued atomically with the execution row, when both share a database.
InTransaction = Callable[[Any], Awaitable[None]]


class ExecutionStore(Protocol):
    async def create(
        self,
        execution: Execution,
        created: ExecutionEvent,
        *,
        also: InTransaction | None = None,
        control: Control | None = None,
    ) -> None:
        """Insert the row with its initial ``control`` (default: ``run``) and its
        ``execution:created`` event (seq 0) in one transaction, and run ``also`` in that
        transaction (nothing is written if it fails)."""

    async def get(self, execution_id: str) -> Execution | None: ...

    async def set_status(self, execution_id: str, change: StatusChange) -> Execution | None:
        """Compare-and-set; returns the updated execution, or ``None`` when the CAS failed."""

    async def finish(
        self, execution_id: str, change: StatusChange, events: Sequence[ExecutionEvent]
    ) -> Execution | None:
        """Terminal status and the terminal events in one transaction (``None`` when the CAS failed:
        then no event is written)."""

    async def tree(self, root_execution_id: str) -> list[TreeNode]: ...

    async def list_roots(
        self, flow_id: str, *, limit: int, after: datetime | None, after_id: str | None = None
    ) -> list[RootExecution]:
        """Root executions of a flow, newest first, keyset paginated on (created_at, id)."""

    async def children(self, parent_execution_id: str) -> list[Execution]: ...

    async def count_by_status(self) -> dict[str, int]: ...

    async def created_before(self, cutoff: datetime, *, limit: int) -> list[Execution]:
        """Executions still in ``created`` that were created before ``cutoff``, oldest first."""

    async def get_control(self, execution_id: str) -> Control: ...

    async def update_control(self, execution_id: str, **changes: Any) -> Control:
        """Merge ``changes`` into the control row (bumping ``version``) and wake the execution."""

    async def start(self, execution_id: str, *, owner_id: str | None = None) -> bool:
        """START: the control of a root execution in ``created`` that waits for it moves from
        ``wait`` to ``run``, and the execution is woken; with ``owner_id``, only if it belongs to
        that owner. False (nothing changed) otherwise."""

    def watch_control(self, execution_id: str) -> AbstractAsyncContextManager[ControlFeed]:
        """Live on entry (the current control is read and later changes wake it)."""


class ControlFeed(Protocol):
    """The live control state of one execution, from ``ExecutionStore.watch_control``."""

    @property
    def latest(self) -> Control:
        """The control as last read."""

    async def changed(self, timeout_s: float | None = None, *, poll_s: float | None = None) -> Control | None:
        """The control after its next change; ``None`` when ``timeout_s`` passed first. ``poll_s``:
        how often to re-read without a wake-up (default: the watch's poll interval)."""

    async def current(self) -> Control:
        """The latest control, read again only if a change was signalled since it was read."""

    def __aiter__(self) -> AsyncIterator[Control]:
        """The latest control, then the control after every change."""


class EventLog(Protocol):
    async def append(self, execution_id: str, events: Sequence[ExecutionEvent]) -> None:
        """Append a batch in one transaction with one wake-up. Events carry their index; the
        store keys them by ``seq = index + 1`` and refuses duplicates (``Conflict``)."""

    async def read(
        self, execution_id: str, from_seq: int, *, limit: int, types: frozenset[str] | None = None
    ) -> list[ExecutionEvent]: ...

    async def last_seq(self, execution_id: str) -> int:
        """The highest stored seq, -1 when there is none."""

    def subscribe(
        self,
        execution_id: str,
        from_seq: int,
        *,
        types: frozenset[str] | None = None,
        batch_size: int = 100,
        batch_timeout_ms: int = 25,
    ) -> AbstractAsyncContextManager[AsyncIterator[list[ExecutionEvent]]]:
        """Live on entry; yields batches (at most ``batch_size``) from ``from_seq`` on, in order,
        without gaps or duplicates, and ends after the terminal event."""


class UserStore(Protocol):
    async def add(self, name: str, *, is_admin: bool, token_hash: str) -> User: ...

    async def by_token_hash(self, token_hash: str) -> User | None: ...

    async def list(self) -> list[User]: ...

    async def revoke(self, name_or_id: str) -> bool: ...


class WorkerRegistry(Protocol):
    async def heartbeat(self, executor_id: str, info: dict[str, Any]) -> None: ...

    async def list(self) -> list[WorkerInfo]: ...

    async def remove(self, executor_id: str) -> None: ...

    async def claim_dead(self, executor_id: str, silent_since: datetime) -> bool:
        """Remove a worker whose last heartbeat is older than ``silent_since``; True for exactly
        one caller, so only one reaper resumes its workflows."""
