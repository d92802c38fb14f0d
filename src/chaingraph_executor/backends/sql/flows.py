"""``SqlFlowStore``: the current version of each flow in ``chaingraph_flows`` and every version in
``chaingraph_flow_versions``."""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, exc, insert, or_, select, update

from chaingraph_executor.backends.common import decode_cursor, encode_cursor
from chaingraph_executor.backends.sql import driver_sql
from chaingraph_executor.backends.sql.database import Database
from chaingraph_executor.backends.sql.tables import flow_versions, flows
from chaingraph_executor.domain.flow import Flow
from chaingraph_executor.errors import Conflict
from chaingraph_executor.ports import FlowPage, StoredFlow

_SAVE_ATTEMPTS = 5


def _dump(flow: Flow) -> str:
    return json.dumps(flow.to_json(), separators=(",", ":"), ensure_ascii=False)


class _ParsedFlows:
    """Parsed flows by their stored text: validating a large flow costs far more than reading it,
    and every ``create`` reads its flow. Keyed by the text itself, so a flow deleted and uploaded
    again with other content can never be served stale. Flows are never mutated after parsing."""

    def __init__(self, size: int = 64) -> None:
        self._items: OrderedDict[str, Flow] = OrderedDict()
        self._size = size

    def __call__(self, data: str) -> Flow:
        flow = self._items.get(data)
        if flow is not None:
            self._items.move_to_end(data)
            return flow
        flow = Flow.model_validate(json.loads(data))
        self._items[data] = flow
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return flow


class SqlFlowStore:
    """The flow store on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._load = _ParsedFlows()

    async def save(self, flow: Flow, owner_id: str) -> StoredFlow:
        for _ in range(_SAVE_ATTEMPTS):
            try:
                return await self._save_once(flow, owner_id)
            except exc.IntegrityError:
                continue  # a concurrent save of the same id won the race: take the next version
        raise Conflict(f"flow {flow.id} is being saved concurrently; try again", flow_id=flow.id)

    async def _save_once(self, flow: Flow, owner_id: str) -> StoredFlow:
        now = datetime.now(UTC)
        async with self._db.begin() as tx:
            current = (
                await tx.conn.execute(
                    select(flows.c.version, flows.c.created_at).where(flows.c.id == flow.id).with_for_update()
                )
            ).first()
            version = 1 if current is None else int(current.version) + 1
            created_at = now if current is None else current.created_at
            stored = flow.with_owner(owner_id, version)
            data = _dump(stored)
            values: dict[str, Any] = {
                "owner_id": owner_id,
                "name": stored.metadata.name,
                "version": version,
                "data": data,
                "updated_at": now,
            }
            if current is None:
                await tx.conn.execute(insert(flows).values(id=flow.id, created_at=now, **values))
            else:
                await tx.conn.execute(update(flows).where(flows.c.id == flow.id).values(**values))
            await tx.conn.execute(
                insert(flow_versions).values(flow_id=flow.id, version=version, data=data, created_at=now)
            )
        return StoredFlow(
            flow=stored, owner_id=owner_id, version=version, created_at=created_at, updated_at=now
        )

    async def _current(self, flow_id: str) -> StoredFlow | None:
        # every `create` reads its flow: one statement on the driver
        sqlite = self._db.is_sqlite
        rows = await self._db.driver_fetch(driver_sql.GET_FLOW.text(sqlite), {"id": flow_id})
        if not rows:
            return None
        found = driver_sql.decode(driver_sql.FLOW_COLUMNS, rows[0], sqlite)
        return StoredFlow(
            flow=self._load(found["data"]),
            owner_id=found["owner_id"],
            version=found["version"],
            created_at=found["created_at"],
            updated_at=found["updated_at"],
        )

    async def get(self, flow_id: str, version: int | None = None) -> StoredFlow | None:
        if version is None:
            return await self._current(flow_id)
        async with self._db.connect() as conn:
            stmt = (
                select(flows.c.owner_id, flows.c.created_at, flow_versions.c.data, flow_versions.c.created_at)
                .join(flow_versions, flow_versions.c.flow_id == flows.c.id)
                .where(flows.c.id == flow_id, flow_versions.c.version == version)
            )
            found = (await conn.execute(stmt)).first()
        if found is None:
            return None
        owner_id, created_at, data, version_created_at = found
        return StoredFlow(
            flow=self._load(data),
            owner_id=owner_id,
            version=version,
            created_at=created_at,
            updated_at=version_created_at,
        )

    async def list(self, owner_id: str | None, *, limit: int, cursor: str | None) -> FlowPage:
        c = flows.c
        stmt = select(flows)
        if owner_id is not None:
            stmt = stmt.where(c.owner_id == owner_id)
        if cursor:
            updated_at, last_id = decode_cursor(cursor)
            newer_first = or_(c.updated_at < updated_at, and_(c.updated_at == updated_at, c.id < last_id))
            stmt = stmt.where(newer_first)
        limit = max(limit, 1)
        stmt = stmt.order_by(c.updated_at.desc(), c.id.desc()).limit(limit + 1)
        async with self._db.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        items = [
            StoredFlow(
                flow=self._load(r.data),
                owner_id=r.owner_id,
                version=r.version,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows[:limit]
        ]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = encode_cursor(last.updated_at, last.flow.id)
        return FlowPage(items=items, next_cursor=next_cursor)

    async def delete(self, flow_id: str) -> bool:
        async with self._db.begin() as tx:
            await tx.conn.execute(delete(flow_versions).where(flow_versions.c.flow_id == flow_id))
            result = await tx.conn.execute(delete(flows).where(flows.c.id == flow_id))
        return bool(result.rowcount)
