"""The hot statements run on the driver (``driver_sql``) read and write exactly what the
SQLAlchemy column types do: rows written one way read back equal the other way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import select

from chaingraph_executor.backends.sql import SqlBackend
from chaingraph_executor.backends.sql.executions import execution_from, to_control, to_execution
from chaingraph_executor.backends.sql.tables import events, executions
from chaingraph_executor.domain.events import ErrorInfo, created_event, event
from chaingraph_executor.domain.execution import Execution, ExecutionStatus
from chaingraph_executor.errors import Conflict
from chaingraph_executor.ports import Control, StatusChange

CREATED = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def _execution(eid: str) -> Execution:
    return Execution(
        id=eid,
        flow_id="f",
        owner_id="o",
        status=ExecutionStatus.CREATED,
        created_at=CREATED,
        updated_at=CREATED,
        root_execution_id=eid,
        options={"debug": True, "breakpoints": ["a"], "at": CREATED},
        integration={"archai": {"messageID": 7}, "err": ErrorInfo("boom", "TypeError")},
        external_events=[{"eventName": "e", "payload": {"when": CREATED, "n": [1, 2.5, None]}}],
        flow_version=3,
        event_name="e",
    )


async def _create(backend: SqlBackend, eid: str) -> Execution:
    """Store ``_execution(eid)`` with its ``execution:created`` event."""
    ex = _execution(eid)
    created = created_event(
        execution_id=ex.id,
        flow_id="f",
        flow_metadata={},
        owner_id="o",
        root_execution_id=ex.id,
        parent_execution_id=None,
        execution_depth=0,
    )
    await backend.executions.create(ex, created)
    return ex


async def _sqlalchemy_row(backend: SqlBackend, eid: str) -> Execution:
    async with backend.db.connect() as conn:
        row = (await conn.execute(select(executions).where(executions.c.id == eid))).first()
    assert row is not None
    return to_execution(row)


@pytest.mark.asyncio
async def test_get_reads_what_sqlalchemy_reads(sql_url: str) -> None:
    async with SqlBackend(sql_url) as backend:
        ex = await _create(backend, "x-get")
        fast = await backend.executions.get(ex.id)
        assert fast == await _sqlalchemy_row(backend, ex.id)
        assert fast == ex
        assert fast.created_at.tzinfo is UTC
        assert await backend.executions.get("x-missing") is None


@pytest.mark.asyncio
async def test_create_writes_what_sqlalchemy_reads(sql_url: str) -> None:
    async with SqlBackend(sql_url) as backend:
        ex = _execution("x-new")
        created = created_event(
            execution_id=ex.id,
            flow_id="f",
            flow_metadata={"name": "ünïcode", "at": CREATED},
            owner_id="o",
            root_execution_id=ex.id,
            parent_execution_id=None,
            execution_depth=0,
        )
        waiting = Control(state="wait", reason="r", breakpoints=("a", "b"), step_seq=2, version=4)
        await backend.executions.create(ex, created, control=waiting)
        async with backend.db.connect() as conn:
            row = (await conn.execute(select(executions).where(executions.c.id == ex.id))).first()
            stored = (await conn.execute(select(events).where(events.c.execution_id == ex.id))).all()
        assert row is not None
        assert to_execution(row) == ex
        assert to_control(cast(Any, row._mapping)) == waiting
        assert [(r.seq, r.type) for r in stored] == [(0, "execution:created")]
        [read] = await backend.events.read(ex.id, 0, limit=10)
        assert (read.index, read.type, read.data) == (-1, created.type, created.data)
        with pytest.raises(Conflict):  # the same id again: nothing written
            await backend.executions.create(ex, created)
        assert len(await backend.events.read(ex.id, 0, limit=10)) == 1


@pytest.mark.asyncio
async def test_status_change_on_the_driver_matches_sqlalchemy(sql_url: str) -> None:
    async with SqlBackend(sql_url) as backend:
        ex = await _create(backend, "x-cas")
        to_running = StatusChange(ExecutionStatus.RUNNING, frozenset({ExecutionStatus.CREATED}))
        running = await backend.executions.set_status(ex.id, to_running)
        assert running is not None and running.status is ExecutionStatus.RUNNING
        assert running.started_at is not None and running.started_at >= CREATED
        assert running == await _sqlalchemy_row(backend, ex.id)
        # compare-and-set: the same change again finds no row in `created`
        assert await backend.executions.set_status(ex.id, to_running) is None
        paused = await backend.executions.set_status(
            ex.id, StatusChange(ExecutionStatus.PAUSED, frozenset({ExecutionStatus.RUNNING}))
        )
        assert paused is not None and paused.started_at == running.started_at  # kept, not reset
        await backend.executions.finish(
            ex.id,
            StatusChange(ExecutionStatus.STOPPED, frozenset({ExecutionStatus.PAUSED})),
            [event(0, "flow:cancelled", {"reason": "x"})],
        )
        # a terminal status is final whatever the path
        resumed = StatusChange(
            ExecutionStatus.RUNNING, frozenset({ExecutionStatus.PAUSED, ExecutionStatus.STOPPED})
        )
        assert await backend.executions.set_status(ex.id, resumed) is None
        final = await backend.executions.get(ex.id)
        assert final is not None and final.status is ExecutionStatus.STOPPED


@pytest.mark.asyncio
async def test_control_and_event_rows_read_the_same_both_ways(sql_url: str) -> None:
    async with SqlBackend(sql_url) as backend:
        ex = await _create(backend, "x-ctl")
        changed = await backend.executions.update_control(ex.id, state="pause", breakpoints=("a", "b"))
        fast = await backend.executions.get_control(ex.id)
        assert fast == changed == Control(state="pause", breakpoints=("a", "b"), version=fast.version)
        async with backend.db.connect() as conn:
            row = (await conn.execute(select(executions).where(executions.c.id == ex.id))).first()
        assert row is not None
        assert to_control(cast(Any, row._mapping)) == fast
        stamp = CREATED + timedelta(microseconds=1)
        await backend.events.append(ex.id, [event(0, "flow:started", {"at": stamp})])
        read = await backend.events.read(ex.id, 0, limit=10)
        async with backend.db.connect() as conn:
            query = select(events.c.ts).where(events.c.execution_id == ex.id).order_by(events.c.seq)
            stored = (await conn.execute(query)).scalars().all()
        assert [e.timestamp for e in read] == list(stored) and len(stored) == 2
        assert read[-1].data == {"at": stamp}
        assert execution_from(dict(cast(Any, row._mapping))) == await backend.executions.get(ex.id)


@pytest.mark.asyncio
async def test_finish_writes_status_fields_and_event_together_or_nothing(sql_url: str) -> None:
    async with SqlBackend(sql_url) as backend:
        ex = await _create(backend, "x-fin")
        await backend.executions.set_status(
            ex.id, StatusChange(ExecutionStatus.RUNNING, frozenset({ExecutionStatus.CREATED}))
        )
        outputs = {"n": {"out": [1, {"at": CREATED}]}, "e": {"err": ErrorInfo("x")}}
        failed = StatusChange(
            ExecutionStatus.FAILED,
            frozenset({ExecutionStatus.RUNNING}),
            error_message="boom",
            error_node_id="n",
            outputs=outputs,
        )
        done = await backend.executions.finish(ex.id, failed, [event(0, "flow:failed", {"at": CREATED})])
        assert done is not None and done == await _sqlalchemy_row(backend, ex.id)
        assert (done.status, done.error_message, done.error_node_id) == (ExecutionStatus.FAILED, "boom", "n")
        assert done.outputs == outputs and done.completed_at is not None
        assert [e.type for e in await backend.events.read(ex.id, 0, limit=10)] == [
            "execution:created",
            "flow:failed",
        ]
        # a second finish finds no row in an allowed status: no status change, no event
        again = StatusChange(ExecutionStatus.COMPLETED, frozenset({ExecutionStatus.RUNNING}))
        assert await backend.executions.finish(ex.id, again, [event(1, "flow:completed", {})]) is None
        assert len(await backend.events.read(ex.id, 0, limit=10)) == 2
        assert (await backend.executions.get(ex.id)) == done
        assert await backend.events.is_finished(ex.id)
        assert not await backend.events.is_finished("x-missing")
