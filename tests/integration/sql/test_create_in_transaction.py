"""``create(…, also=step)``: the step runs inside the store's transaction, on its connection, and
its failure leaves nothing behind (the durable workflow's enqueue uses this on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from chaingraph_executor.backends.sql import SqlBackend
from chaingraph_executor.domain.execution import Execution
from chaingraph_executor.testing import new_root_execution

NOW = datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC)


def _new(eid: str) -> tuple[Execution, Any]:
    return new_root_execution(eid, created_at=NOW)


@pytest.mark.asyncio
async def test_the_step_sees_the_uncommitted_row_on_the_same_connection(sql_url: str) -> None:
    seen: list[int] = []

    async def step(conn: Any) -> None:
        query = text("SELECT count(*) FROM chaingraph_executions WHERE id = :id")
        seen.append(int((await conn.execute(query, {"id": "t-ok"})).scalar_one()))

    async with SqlBackend(sql_url) as backend:
        ex, created = _new("t-ok")
        await backend.executions.create(ex, created, also=step)
        assert seen == [1]
        assert await backend.executions.get("t-ok") == ex
        assert [e.type for e in await backend.events.read("t-ok", 0, limit=5)] == ["execution:created"]


@pytest.mark.asyncio
async def test_a_failing_step_rolls_the_row_and_its_event_back(sql_url: str) -> None:
    async def step(conn: Any) -> None:
        raise RuntimeError("enqueue refused")

    async with SqlBackend(sql_url) as backend:
        ex, created = _new("t-fail")
        with pytest.raises(RuntimeError, match="enqueue refused"):
            await backend.executions.create(ex, created, also=step)
        assert await backend.executions.get("t-fail") is None
        assert await backend.events.read("t-fail", 0, limit=5) == []
        # and the id is free: a later create succeeds
        await backend.executions.create(ex, created)
        assert await backend.executions.get("t-fail") == ex
