"""``InMemoryExecutionStore``: executions and their control state in ``MemoryState``, with the
same compare-and-set, tree and control-channel rules as the SQL store."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from chaingraph_executor.backends.common import allowed_sources, as_utc, build_tree, merge_control
from chaingraph_executor.backends.memory.state import MemoryState, copy_execution, json_copy
from chaingraph_executor.backends.subscription import (
    CONTROL_CHANNEL,
    DEFAULT_POLL_INTERVAL_S,
    EVENTS_CHANNEL,
    ControlWatch,
)
from chaingraph_executor.domain.events import ExecutionEvent
from chaingraph_executor.domain.execution import Execution, ExecutionStatus
from chaingraph_executor.errors import Conflict, ExecutionNotFound
from chaingraph_executor.ports import (
    Control,
    ControlFeed,
    InTransaction,
    RootExecution,
    StatusChange,
    TreeNode,
)


class InMemoryExecutionStore:
    def __init__(
        self, state: MemoryState, *, control_poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    ) -> None:
        self._state = state
        self._control_poll_interval_s = control_poll_interval_s

    async def create(
        self,
        execution: Execution,
        created: ExecutionEvent,
        *,
        also: InTransaction | None = None,
        control: Control | None = None,
    ) -> None:
        state = self._state
        if execution.id in state.executions:
            raise Conflict(f"execution {execution.id} already exists", execution_id=execution.id)
        first = replace(created, index=-1)  # execution:created is always seq 0
        state.check_new_events(execution.id, [first])
        if also is not None:
            await also(None)  # before anything is stored: a failure leaves nothing behind
        state.executions[execution.id] = copy_execution(execution)
        state.controls[execution.id] = control or Control()
        state.add_events(execution.id, [first])

    async def get(self, execution_id: str) -> Execution | None:
        execution = self._state.executions.get(execution_id)
        return None if execution is None else copy_execution(execution)

    async def set_status(self, execution_id: str, change: StatusChange) -> Execution | None:
        updated = self._compare_and_set(execution_id, change, ())
        if updated is not None and change.status.terminal:
            self._state.hub.wake(EVENTS_CHANNEL, execution_id)
        return updated

    async def finish(
        self, execution_id: str, change: StatusChange, events: Sequence[ExecutionEvent]
    ) -> Execution | None:
        updated = self._compare_and_set(execution_id, change, events)
        if updated is not None:
            if events:
                self._state.add_events(execution_id, events)
            elif change.status.terminal:
                self._state.hub.wake(EVENTS_CHANNEL, execution_id)
        return updated

    def _compare_and_set(
        self, execution_id: str, change: StatusChange, events: Sequence[ExecutionEvent]
    ) -> Execution | None:
        current = self._state.executions.get(execution_id)
        if current is None or current.status not in allowed_sources(change):
            return None
        if events:
            self._state.check_new_events(execution_id, events)  # raises before anything changes
        now = datetime.now(UTC)
        updated = replace(current, status=change.status, updated_at=now)
        if change.status is ExecutionStatus.RUNNING and updated.started_at is None:
            updated.started_at = now
        if change.status.terminal:
            updated.completed_at = now
        if change.error_message is not None:
            updated.error_message = change.error_message
        if change.error_node_id is not None:
            updated.error_node_id = change.error_node_id
        if change.outputs is not None:
            updated.outputs = json_copy(change.outputs)
        self._state.executions[execution_id] = updated
        return copy_execution(updated)

    async def tree(self, root_execution_id: str) -> list[TreeNode]:
        rows = [
            copy_execution(e)
            for e in self._state.executions.values()
            if e.root_execution_id == root_execution_id
        ]
        return build_tree(root_execution_id, rows)

    async def list_roots(
        self, flow_id: str, *, limit: int, after: datetime | None, after_id: str | None = None
    ) -> list[RootExecution]:
        roots = [
            e for e in self._state.executions.values() if e.flow_id == flow_id and e.execution_depth == 0
        ]
        if after is not None:
            after = as_utc(after)
            if after_id is None:
                roots = [e for e in roots if as_utc(e.created_at) < after]
            else:
                roots = [e for e in roots if (as_utc(e.created_at), e.id) < (after, after_id)]
        roots.sort(key=lambda e: (as_utc(e.created_at), e.id), reverse=True)
        out: list[RootExecution] = []
        for root in roots[: max(limit, 0)]:
            nested = [
                e.execution_depth
                for e in self._state.executions.values()
                if e.root_execution_id == root.id and e.id != root.id
            ]
            levels = max(max(nested, default=root.execution_depth) - root.execution_depth, 0)
            out.append(RootExecution(execution=copy_execution(root), levels=levels, total_nested=len(nested)))
        return out

    async def children(self, parent_execution_id: str) -> list[Execution]:
        found = [e for e in self._state.executions.values() if e.parent_execution_id == parent_execution_id]
        found.sort(key=lambda e: (as_utc(e.created_at), e.id))
        return [copy_execution(e) for e in found]

    async def count_by_status(self) -> dict[str, int]:
        counts = {s.value: 0 for s in ExecutionStatus}
        for execution in self._state.executions.values():
            counts[execution.status.value] += 1
        return counts

    async def created_before(self, cutoff: datetime, *, limit: int) -> list[Execution]:
        found = [
            e
            for e in self._state.executions.values()
            if e.status is ExecutionStatus.CREATED and as_utc(e.created_at) < cutoff
        ]
        found.sort(key=lambda e: (as_utc(e.created_at), e.id))
        return [copy_execution(e) for e in found[: max(limit, 0)]]

    # -- control channel ----------------------------------------------------------------

    async def get_control(self, execution_id: str) -> Control:
        control = self._state.controls.get(execution_id)
        if control is None:
            raise ExecutionNotFound(f"execution {execution_id} not found", execution_id=execution_id)
        return control

    async def update_control(self, execution_id: str, **changes: Any) -> Control:
        control = merge_control(await self.get_control(execution_id), changes)
        self._state.controls[execution_id] = control
        self._state.hub.wake(CONTROL_CHANNEL, execution_id)
        return control

    async def start(self, execution_id: str, *, owner_id: str | None = None) -> bool:
        control = self._state.controls.get(execution_id)
        execution = self._state.executions.get(execution_id)
        if control is None or execution is None or control.state != "wait":
            return False
        if execution.status is not ExecutionStatus.CREATED or not execution.is_root:
            return False
        if owner_id is not None and execution.owner_id != owner_id:
            return False
        self._state.controls[execution_id] = replace(control, state="run", version=control.version + 1)
        self._state.hub.wake(CONTROL_CHANNEL, execution_id)
        return True

    def watch_control(self, execution_id: str) -> AbstractAsyncContextManager[ControlFeed]:
        return ControlWatch(
            lambda: self.get_control(execution_id),
            self._state.hub,
            execution_id,
            poll_interval_s=self._control_poll_interval_s,
        )
