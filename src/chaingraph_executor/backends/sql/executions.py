"""``SqlExecutionStore``: rows of ``chaingraph_executions`` (upstream's columns plus flow version,
outputs and the control channel), compare-and-set status changes, the execution tree and the
durable control state with its wake-ups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
from sqlalchemy import Row, and_, exc, func, insert, literal, or_, select, update

from chaingraph_executor.backends.common import allowed_sources, build_tree, merge_control
from chaingraph_executor.backends.sql import driver_sql
from chaingraph_executor.backends.sql.codec import pg_batch
from chaingraph_executor.backends.sql.columns import UtcDateTime
from chaingraph_executor.backends.sql.database import Database, Transaction
from chaingraph_executor.backends.sql.events import duplicate_seq, insert_events
from chaingraph_executor.backends.sql.notify import LocalNotifier, Notifier, PgNotifier, payload
from chaingraph_executor.backends.sql.tables import executions
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

_CONTROL_COLUMNS = (
    executions.c.control_state,
    executions.c.control_reason,
    executions.c.control_breakpoints,
    executions.c.control_step_seq,
    executions.c.control_version,
)


def _now() -> datetime:
    return datetime.now(UTC)


def to_execution(row: Row[Any]) -> Execution:
    return execution_from(cast(Mapping[str, Any], row._mapping))


def execution_from(m: Mapping[str, Any]) -> Execution:
    return Execution(
        id=m["id"],
        flow_id=m["flow_id"],
        owner_id=m["owner_id"],
        status=ExecutionStatus(m["status"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        root_execution_id=m["root_execution_id"] or m["id"],
        parent_execution_id=m["parent_execution_id"],
        execution_depth=m["execution_depth"],
        started_at=m["started_at"],
        completed_at=m["completed_at"],
        error_message=m["error_message"],
        error_node_id=m["error_node_id"],
        options=m["options"] or {},
        integration=m["integration"] or {},
        external_events=m["external_events"] or [],
        flow_version=m["flow_version"],
        outputs=m["outputs"],
        event_name=m["event_name"],
    )


def execution_values(e: Execution) -> dict[str, Any]:
    return {
        "id": e.id,
        "flow_id": e.flow_id,
        "owner_id": e.owner_id,
        "root_execution_id": e.root_execution_id,
        "parent_execution_id": e.parent_execution_id,
        "status": e.status.value,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
        "started_at": e.started_at,
        "completed_at": e.completed_at,
        "error_message": e.error_message,
        "error_node_id": e.error_node_id,
        "execution_depth": e.execution_depth,
        "options": e.options,
        "integration": e.integration,
        "external_events": e.external_events,
        "flow_version": e.flow_version,
        "outputs": e.outputs,
        "event_name": e.event_name,
    }


def control_values(control: Control) -> dict[str, Any]:
    return {
        "control_state": control.state,
        "control_reason": control.reason,
        "control_breakpoints": list(control.breakpoints),
        "control_step_seq": control.step_seq,
        "control_version": control.version,
    }


def to_control(m: Mapping[str, Any]) -> Control:
    return Control(
        state=m["control_state"],
        reason=m["control_reason"],
        breakpoints=tuple(m["control_breakpoints"] or ()),
        step_seq=m["control_step_seq"],
        version=m["control_version"],
    )


def _cas_statement(execution_id: str, change: StatusChange) -> Any:
    """``UPDATE … WHERE status IN (allowed sources) RETURNING *``, or None when no source allows it."""
    sources = allowed_sources(change)
    if not sources:
        return None
    now = _now()
    values: dict[str, Any] = {"status": change.status.value, "updated_at": now}
    if change.status is ExecutionStatus.RUNNING:
        values["started_at"] = func.coalesce(executions.c.started_at, literal(now, UtcDateTime()))
    if change.status.terminal:
        values["completed_at"] = now
    if change.error_message is not None:
        values["error_message"] = change.error_message
    if change.error_node_id is not None:
        values["error_node_id"] = change.error_node_id
    if change.outputs is not None:
        values["outputs"] = change.outputs
    return (
        update(executions)
        .where(executions.c.id == execution_id, executions.c.status.in_(sorted(s.value for s in sources)))
        .values(**values)
        .returning(*executions.c)
    )


class SqlExecutionStore:
    """The execution store on SQLite or PostgreSQL."""

    def __init__(
        self,
        db: Database,
        notifier: Notifier,
        *,
        control_poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    ) -> None:
        self._db = db
        self._notifier = notifier
        self._control_poll_interval_s = control_poll_interval_s
        self._pg_fast_path = db.dialect == "postgresql" and isinstance(notifier, PgNotifier)

    async def create(
        self,
        execution: Execution,
        created: ExecutionEvent,
        *,
        also: InTransaction | None = None,
        control: Control | None = None,
    ) -> None:
        # No wake-up: nobody can be waiting for the events of an execution that does not exist yet.
        first = replace(created, index=-1)  # execution:created is always seq 0
        values = execution_values(execution) | control_values(control or Control())
        try:
            async with self._db.begin() as tx:
                if self._pg_fast_path:  # the row and its event: one statement
                    driver: Any = (await tx.conn.get_raw_connection()).driver_connection
                    params = driver_sql.pg_create_params(values, pg_batch([first]))
                    await driver.execute(driver_sql.PG_CREATE, params, prepare=True)
                else:
                    await tx.conn.execute(insert(executions).values(**values))
                    await insert_events(tx, self._notifier, execution.id, [first], notify=False)
                if also is not None:
                    await also(tx.conn)
        except (exc.IntegrityError, psycopg.errors.UniqueViolation):
            raise Conflict(f"execution {execution.id} already exists", execution_id=execution.id) from None

    async def get(self, execution_id: str) -> Execution | None:
        rows = await self._db.driver_fetch(driver_sql.GET.text(self._db.is_sqlite), {"id": execution_id})
        return self._first_execution(rows)

    def _first_execution(self, rows: list[Any]) -> Execution | None:
        if not rows:
            return None
        columns = driver_sql.EXECUTION_COLUMNS  # a statement may return more after them
        return execution_from(driver_sql.decode(columns, rows[0][: len(columns)], self._db.is_sqlite))

    async def set_status(self, execution_id: str, change: StatusChange) -> Execution | None:
        if change.status.terminal:  # with its notification, in one transaction
            async with self._db.begin() as tx:
                return await self._compare_and_set(tx, execution_id, change, notify=True)
        sources = allowed_sources(change)
        fast = driver_sql.status_update(execution_id, change, sources, _now(), sqlite=self._db.is_sqlite)
        if fast is not None:
            return self._first_execution(await self._db.driver_fetch(*fast, write=True))
        stmt = _cas_statement(execution_id, change)
        if stmt is None:
            return None
        async with self._db.single_write() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else to_execution(row)

    async def finish(
        self, execution_id: str, change: StatusChange, events: Sequence[ExecutionEvent]
    ) -> Execution | None:
        if self._pg_fast_path and events and change.status.terminal:
            return await self._pg_finish(execution_id, change, events)
        try:
            async with self._db.begin() as tx:
                result = await self._compare_and_set(tx, execution_id, change, notify=not events)
                if result is not None:
                    await insert_events(tx, self._notifier, execution_id, events)
        except exc.IntegrityError:
            raise duplicate_seq(execution_id, events) from None
        return result

    async def _pg_finish(
        self, execution_id: str, change: StatusChange, events: Sequence[ExecutionEvent]
    ) -> Execution | None:
        sources = allowed_sources(change)
        if not sources:
            return None
        last = max(ev.index for ev in events) + 1
        params = driver_sql.pg_finish_params(
            execution_id,
            change,
            sources,
            _now(),
            pg_batch(events),
            EVENTS_CHANNEL,
            payload(execution_id, str(last)),
        )
        try:
            rows = await self._db.driver_fetch(driver_sql.PG_FINISH, params, write=True)
        except psycopg.errors.UniqueViolation:
            raise duplicate_seq(execution_id, events) from None
        return self._first_execution(rows)

    async def _compare_and_set(
        self, tx: Transaction, execution_id: str, change: StatusChange, *, notify: bool
    ) -> Execution | None:
        stmt = _cas_statement(execution_id, change)
        if stmt is None:
            return None
        row = (await tx.conn.execute(stmt)).first()
        if row is None:
            return None
        if notify and change.status.terminal:
            # wake subscribers: a terminal row ends their stream once everything is read
            await self._notifier.notify(tx, EVENTS_CHANNEL, execution_id)
        return to_execution(row)

    async def tree(self, root_execution_id: str) -> list[TreeNode]:
        stmt = select(executions).where(executions.c.root_execution_id == root_execution_id)
        async with self._db.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return build_tree(root_execution_id, [to_execution(r) for r in rows])

    async def list_roots(
        self, flow_id: str, *, limit: int, after: datetime | None, after_id: str | None = None
    ) -> list[RootExecution]:
        c = executions.c
        stmt = select(executions).where(c.flow_id == flow_id, c.execution_depth == 0)
        if after is not None:
            if after_id is None:
                stmt = stmt.where(c.created_at < after)
            else:
                stmt = stmt.where(or_(c.created_at < after, and_(c.created_at == after, c.id < after_id)))
        stmt = stmt.order_by(c.created_at.desc(), c.id.desc()).limit(max(limit, 0))
        async with self._db.connect() as conn:
            roots = [to_execution(r) for r in (await conn.execute(stmt)).all()]
            if not roots:
                return []
            nested = (
                select(c.root_execution_id, func.max(c.execution_depth), func.count())
                .where(c.root_execution_id.in_([r.id for r in roots]), c.id != c.root_execution_id)
                .group_by(c.root_execution_id)
            )
            result = await conn.execute(nested)
            stats = {root_id: (depth, count) for root_id, depth, count in result}
        out: list[RootExecution] = []
        for root in roots:
            depth, count = stats.get(root.id, (root.execution_depth, 0))
            out.append(
                RootExecution(
                    execution=root, levels=max(int(depth) - root.execution_depth, 0), total_nested=int(count)
                )
            )
        return out

    async def children(self, parent_execution_id: str) -> list[Execution]:
        stmt = (
            select(executions)
            .where(executions.c.parent_execution_id == parent_execution_id)
            .order_by(executions.c.created_at, executions.c.id)
        )
        async with self._db.connect() as conn:
            return [to_execution(r) for r in (await conn.execute(stmt)).all()]

    async def count_by_status(self) -> dict[str, int]:
        counts = {s.value: 0 for s in ExecutionStatus}
        stmt = select(executions.c.status, func.count()).group_by(executions.c.status)
        async with self._db.connect() as conn:
            for status, count in await conn.execute(stmt):
                counts[status] = int(count)
        return counts

    async def created_before(self, cutoff: datetime, *, limit: int) -> list[Execution]:
        c = executions.c
        stmt = (
            select(executions)
            .where(c.status == ExecutionStatus.CREATED.value, c.created_at < cutoff)
            .order_by(c.created_at, c.id)
            .limit(max(limit, 0))
        )
        async with self._db.connect() as conn:
            return [to_execution(r) for r in (await conn.execute(stmt)).all()]

    # -- control channel ----------------------------------------------------------------

    async def get_control(self, execution_id: str) -> Control:
        sqlite = self._db.is_sqlite
        rows = await self._db.driver_fetch(driver_sql.GET_CONTROL.text(sqlite), {"id": execution_id})
        if not rows:
            raise ExecutionNotFound(f"execution {execution_id} not found", execution_id=execution_id)
        return to_control(driver_sql.decode(driver_sql.CONTROL_COLUMNS, rows[0], sqlite))

    async def update_control(self, execution_id: str, **changes: Any) -> Control:
        async with self._db.begin() as tx:
            stmt = select(*_CONTROL_COLUMNS).where(executions.c.id == execution_id).with_for_update()
            row = (await tx.conn.execute(stmt)).first()
            if row is None:
                raise ExecutionNotFound(f"execution {execution_id} not found", execution_id=execution_id)
            control = merge_control(to_control(cast(Mapping[str, Any], row._mapping)), changes)
            await tx.conn.execute(
                update(executions).where(executions.c.id == execution_id).values(**control_values(control))
            )
            await self._notifier.notify(tx, CONTROL_CHANNEL, execution_id)
        return control

    async def start(self, execution_id: str, *, owner_id: str | None = None) -> bool:
        params: dict[str, Any] = {"id": execution_id, "owner": owner_id}
        if self._pg_fast_path:  # the change and its NOTIFY: one statement
            params |= {"channel": CONTROL_CHANNEL, "payload": payload(execution_id)}
            return bool(await self._db.driver_fetch(driver_sql.PG_START, params, write=True))
        assert isinstance(self._notifier, LocalNotifier)  # the one other notifier: wakes in process
        if not await self._db.driver_fetch(driver_sql.START.text(self._db.is_sqlite), params, write=True):
            return False
        self._notifier.hub.wake(CONTROL_CHANNEL, execution_id)
        return True

    def watch_control(self, execution_id: str) -> AbstractAsyncContextManager[ControlFeed]:
        return ControlWatch(
            lambda: self.get_control(execution_id),
            self._notifier,
            execution_id,
            poll_interval_s=self._control_poll_interval_s,
        )
