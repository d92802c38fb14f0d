"""Use cases of flows: upload (new version when the id exists), get, list, delete."""

from __future__ import annotations

from typing import Any

from chaingraph_executor.domain.flow import Flow, parse_flow
from chaingraph_executor.engine.graph import compile_flow
from chaingraph_executor.engine.nodes import NodeRegistry
from chaingraph_executor.errors import FlowNotFound, Forbidden
from chaingraph_executor.ports import FlowPage, FlowStore, StoredFlow
from chaingraph_executor.services.executions import Principal


class FlowService:
    def __init__(self, flows: FlowStore, registry: NodeRegistry) -> None:
        self.flows = flows
        self.registry = registry

    def validate(self, document: Any) -> Flow:
        """Parse and validate a flow document; raises ``InvalidFlow`` naming each problem."""
        flow = parse_flow(document)
        compile_flow(flow, self.registry)
        return flow

    async def upload(self, principal: Principal, document: Any) -> StoredFlow:
        flow = self.validate(document)
        existing = await self.flows.get(flow.id)
        owner = principal.user_id
        if existing is not None:
            if existing.owner_id != principal.user_id and not principal.is_admin:
                raise Forbidden(f"Flow {flow.id} belongs to another user")
            owner = existing.owner_id
        return await self.flows.save(flow.with_owner(owner), owner)

    async def get(self, principal: Principal, flow_id: str, version: int | None = None) -> StoredFlow:
        stored = await self.flows.get(flow_id, version)
        if stored is None or (not principal.is_admin and stored.owner_id != principal.user_id):
            raise FlowNotFound(f"Flow with id {flow_id} not found")
        return stored

    async def list(self, principal: Principal, *, limit: int = 50, cursor: str | None = None) -> FlowPage:
        owner = None if principal.is_admin else principal.user_id
        return await self.flows.list(owner, limit=limit, cursor=cursor)

    async def delete(self, principal: Principal, flow_id: str) -> None:
        await self.get(principal, flow_id)
        await self.flows.delete(flow_id)
