"""Helpers for the backend contract suites: executions, events and a bounded collector."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chaingraph_executor.domain.events import EventType, ExecutionEvent, created_event
from chaingraph_executor.domain.execution import Execution, ExecutionStatus
from chaingraph_executor.ports import StatusChange

S = ExecutionStatus
BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)


class Make:
    """Builds executions and events; ``make.execution(parent=...)`` derives root, parent and depth."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self._ids = itertools.count(1)

    def execution(
        self,
        id: str | None = None,
        *,
        flow_id: str = "flow-1",
        parent: Execution | None = None,
        created_at: datetime | None = None,
        **fields: Any,
    ) -> Execution:
        n = next(self._ids)
        ex_id = id or f"EX{n:04d}"
        stamp = created_at or BASE_TIME + timedelta(seconds=n)
        return Execution(
            id=ex_id,
            flow_id=flow_id,
            owner_id=fields.pop("owner_id", "owner-1"),
            status=fields.pop("status", S.CREATED),
            created_at=stamp,
            updated_at=stamp,
            root_execution_id=parent.root_execution_id if parent else ex_id,
            parent_execution_id=parent.id if parent else None,
            execution_depth=parent.execution_depth + 1 if parent else 0,
            **fields,
        )

    @staticmethod
    def created(execution: Execution) -> ExecutionEvent:
        return created_event(
            execution_id=execution.id,
            flow_id=execution.flow_id,
            flow_metadata={"name": "flow"},
            owner_id=execution.owner_id,
            root_execution_id=execution.root_execution_id,
            parent_execution_id=execution.parent_execution_id,
            execution_depth=execution.execution_depth,
        )

    async def create(self, execution: Execution | None = None, **kwargs: Any) -> Execution:
        execution = execution or self.execution(**kwargs)
        await self.backend.executions.create(execution, self.created(execution))
        return execution

    async def running(self, **kwargs: Any) -> Execution:
        execution = await self.create(**kwargs)
        updated = await self.backend.executions.set_status(
            execution.id, StatusChange(S.RUNNING, frozenset({S.CREATED}))
        )
        assert updated is not None
        return updated

    @staticmethod
    def events(start: int, count: int, type_: str = EventType.NODE_STARTED.value) -> list[ExecutionEvent]:
        """Events with indices ``start .. start + count - 1`` (seqs one higher)."""
        return [
            ExecutionEvent(i, type_, datetime.now(UTC), {"i": i, "nodeId": f"n{i}"})
            for i in range(start, start + count)
        ]

    @staticmethod
    def terminal(index: int, type_: str = EventType.FLOW_COMPLETED.value) -> ExecutionEvent:
        return ExecutionEvent(index, type_, datetime.now(UTC), {"executionTime": 1})

    async def complete(self, execution_id: str, index: int) -> None:
        """Finish a running execution with its terminal event at ``index``."""
        done = await self.backend.executions.finish(
            execution_id, StatusChange(S.COMPLETED, frozenset({S.RUNNING})), [self.terminal(index)]
        )
        assert done is not None

    @staticmethod
    async def collect(
        batches: AsyncIterator[list[ExecutionEvent]], *, timeout: float = 5.0
    ) -> list[list[ExecutionEvent]]:
        """Every batch until the iterator ends (fails if it does not end within ``timeout``)."""
        out: list[list[ExecutionEvent]] = []
        async with asyncio.timeout(timeout):
            async for batch in batches:
                out.append(batch)
        return out

    @staticmethod
    def seqs(batches: list[list[ExecutionEvent]]) -> list[int]:
        return [ev.seq for batch in batches for ev in batch]


@pytest.fixture
def make(backend: Any) -> Make:
    return Make(backend)
