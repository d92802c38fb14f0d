"""``InMemoryFlowStore``: flows and their versions in ``MemoryState``."""

from __future__ import annotations

from datetime import UTC, datetime

from chaingraph_executor.backends.common import decode_cursor, encode_cursor
from chaingraph_executor.backends.memory.state import MemoryState
from chaingraph_executor.domain.flow import Flow
from chaingraph_executor.ports import FlowPage, StoredFlow


class InMemoryFlowStore:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def save(self, flow: Flow, owner_id: str) -> StoredFlow:
        now = datetime.now(UTC)
        current = self._state.flows.get(flow.id)
        version = 1 if current is None else current.version + 1
        stored_flow = Flow.model_validate(flow.with_owner(owner_id, version).to_json())
        stored = StoredFlow(
            flow=stored_flow,
            owner_id=owner_id,
            version=version,
            created_at=now if current is None else current.created_at,
            updated_at=now,
        )
        self._state.flows[flow.id] = stored
        self._state.flow_versions[(flow.id, version)] = (stored_flow, now)
        return stored

    async def get(self, flow_id: str, version: int | None = None) -> StoredFlow | None:
        current = self._state.flows.get(flow_id)
        if current is None or version is None:
            return current
        found = self._state.flow_versions.get((flow_id, version))
        if found is None:
            return None
        flow, created_at = found
        return StoredFlow(
            flow=flow,
            owner_id=current.owner_id,
            version=version,
            created_at=current.created_at,
            updated_at=created_at,
        )

    async def list(self, owner_id: str | None, *, limit: int, cursor: str | None) -> FlowPage:
        items = [f for f in self._state.flows.values() if owner_id is None or f.owner_id == owner_id]
        items.sort(key=lambda f: (f.updated_at, f.flow.id), reverse=True)
        if cursor:
            after = decode_cursor(cursor)
            items = [f for f in items if (f.updated_at, f.flow.id) < after]
        limit = max(limit, 1)
        page = items[:limit]
        next_cursor = encode_cursor(page[-1].updated_at, page[-1].flow.id) if len(items) > limit else None
        return FlowPage(items=page, next_cursor=next_cursor)

    async def delete(self, flow_id: str) -> bool:
        if self._state.flows.pop(flow_id, None) is None:
            return False
        for key in [k for k in self._state.flow_versions if k[0] == flow_id]:
            del self._state.flow_versions[key]
        return True
