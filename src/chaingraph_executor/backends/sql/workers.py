"""``SqlWorkerRegistry``: worker heartbeats in ``chaingraph_workers`` (an upsert per beat)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from chaingraph_executor.backends.sql.database import Database
from chaingraph_executor.backends.sql.tables import workers
from chaingraph_executor.ports import WorkerInfo


class SqlWorkerRegistry:
    """The worker registry on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def heartbeat(self, executor_id: str, info: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        values = {"executor_id": executor_id, "started_at": now, "heartbeat_at": now, "info": info}
        keep_started = {"heartbeat_at": now, "info": info}
        stmt: Any
        if self._db.is_sqlite:
            stmt = sqlite.insert(workers).values(**values)
        else:
            stmt = postgresql.insert(workers).values(**values)
        stmt = stmt.on_conflict_do_update(index_elements=[workers.c.executor_id], set_=keep_started)
        async with self._db.begin() as tx:
            await tx.conn.execute(stmt)

    async def list(self) -> list[WorkerInfo]:
        async with self._db.connect() as conn:
            rows = (await conn.execute(select(workers).order_by(workers.c.executor_id))).all()
        return [
            WorkerInfo(
                executor_id=r.executor_id,
                started_at=r.started_at,
                heartbeat_at=r.heartbeat_at,
                info=r.info or {},
            )
            for r in rows
        ]

    async def claim_dead(self, executor_id: str, silent_since: datetime) -> bool:
        async with self._db.begin() as tx:
            result = await tx.conn.execute(
                delete(workers).where(
                    workers.c.executor_id == executor_id, workers.c.heartbeat_at < silent_since
                )
            )
        return bool(getattr(result, "rowcount", 0))

    async def remove(self, executor_id: str) -> None:
        async with self._db.begin() as tx:
            await tx.conn.execute(delete(workers).where(workers.c.executor_id == executor_id))
