"""The execution router: upstream's procedures at the root, with their inputs, defaults and
limits, plus ``step``, ``setBreakpoints``, flow procedures and ``whoami``. Each procedure is a
thin adapter from the wire to a service call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from chaingraph_executor.domain.events import ExecutionEvent, now
from chaingraph_executor.domain.execution import ExecutionOptions, ExternalEvent
from chaingraph_executor.errors import ErrorKind, ExecutorError, InvalidInput
from chaingraph_executor.ports import StoredFlow
from chaingraph_executor.services.auth import AuthService
from chaingraph_executor.services.executions import ExecutionService, Principal
from chaingraph_executor.services.flows import FlowService
from chaingraph_executor.trpc.codes import TRPCError
from chaingraph_executor.trpc.router import Router, tracked

# One table from the project's error kinds to tRPC codes.
ERROR_CODES: dict[ErrorKind, str] = {
    ErrorKind.INVALID: "BAD_REQUEST",
    ErrorKind.NOT_FOUND: "NOT_FOUND",
    ErrorKind.FORBIDDEN: "FORBIDDEN",
    ErrorKind.UNAUTHENTICATED: "UNAUTHORIZED",
    ErrorKind.CONFLICT: "CONFLICT",
    ErrorKind.TOO_LARGE: "PAYLOAD_TOO_LARGE",
    ErrorKind.UNAVAILABLE: "SERVICE_UNAVAILABLE",
    ErrorKind.INTERNAL: "INTERNAL_SERVER_ERROR",
}


def map_error(exc: Exception) -> TRPCError | None:
    if isinstance(exc, ExecutorError):
        extra: dict[str, Any] = {}
        problems = getattr(exc, "problems", None)
        if problems:
            extra["problems"] = problems
        path = getattr(exc, "path", None)
        if path:
            extra["path_hint"] = path
        return TRPCError(ERROR_CODES[exc.kind], exc.message, data_extra=extra or None)
    return None


@dataclass
class Context:
    """Per request (HTTP) or per connection (WebSocket)."""

    executions: ExecutionService
    flows: FlowService
    auth: AuthService
    principal: Principal | None
    token_error: str | None = None
    on_delivery: Callable[[float], None] | None = None

    def require(self) -> Principal:
        if self.principal is None:
            raise TRPCError("UNAUTHORIZED", self.token_error or "Authentication required: pass a token")
        return self.principal


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Id = Annotated[str, Field(min_length=1, max_length=200)]


class CreateInput(_In):
    flowId: Id
    options: ExecutionOptions | None = None
    integration: dict[str, Any] | None = None
    events: Annotated[list[ExternalEvent], Field(max_length=100)] | None = None


class ExecutionIdInput(_In):
    executionId: Id


class StopInput(_In):
    executionId: Id
    reason: Annotated[str, Field(max_length=1000)] | None = None


class BreakpointsInput(_In):
    executionId: Id
    nodeIds: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=1000)]


class RootsInput(_In):
    flowId: Id
    limit: Annotated[int, Field(ge=1, le=100)] = 50
    after: datetime | None = None
    afterId: Id | None = None


class SubscribeInput(_In):
    executionId: Id
    fromIndex: int = 0
    eventTypes: Annotated[list[str], Field(max_length=100)] = Field(default_factory=list)
    batchSize: Annotated[int, Field(ge=1, le=1000)] = 100
    batchTimeoutMs: Annotated[int, Field(ge=0, le=1000)] = 25
    lastEventId: str | None = None


class UploadInput(_In):
    flow: dict[str, Any]


class FlowIdInput(_In):
    flowId: Id
    version: Annotated[int, Field(ge=1)] | None = None


class ListFlowsInput(_In):
    limit: Annotated[int, Field(ge=1, le=100)] = 50
    cursor: Annotated[str, Field(max_length=500)] | None = None


def event_wire(ev: ExecutionEvent) -> dict[str, Any]:
    return {"index": ev.index, "type": ev.type, "timestamp": ev.timestamp, "data": ev.data}


def flow_summary(stored: StoredFlow) -> dict[str, Any]:
    meta = stored.flow.metadata
    return {
        "flowId": stored.flow.id,
        "version": stored.version,
        "name": meta.name,
        "ownerId": stored.owner_id,
        "tags": meta.tags,
        "createdAt": stored.created_at,
        "updatedAt": stored.updated_at,
        "nodes": len(stored.flow.nodes),
    }


def build_router() -> Router:
    router = Router(transformer="superjson", error_mapper=map_error)

    @router.mutation("create", input=CreateInput)
    async def create(ctx: Context, inp: CreateInput) -> dict[str, Any]:
        eid = await ctx.executions.create(
            ctx.require(), inp.flowId, options=inp.options, integration=inp.integration, events=inp.events
        )
        return {"executionId": eid}

    @router.mutation("start", input=ExecutionIdInput)
    async def start(ctx: Context, inp: ExecutionIdInput) -> dict[str, Any]:
        await ctx.executions.start(ctx.require(), inp.executionId)
        return {"success": True}

    @router.mutation("stop", input=StopInput)
    async def stop(ctx: Context, inp: StopInput) -> dict[str, Any]:
        await ctx.executions.stop(ctx.require(), inp.executionId, inp.reason)
        return {"success": True}

    @router.mutation("pause", input=StopInput)
    async def pause(ctx: Context, inp: StopInput) -> dict[str, Any]:
        await ctx.executions.pause(ctx.require(), inp.executionId, inp.reason)
        return {"success": True}

    @router.mutation("resume", input=ExecutionIdInput)
    async def resume(ctx: Context, inp: ExecutionIdInput) -> dict[str, Any]:
        await ctx.executions.resume(ctx.require(), inp.executionId)
        return {"success": True}

    @router.mutation("step", input=ExecutionIdInput)
    async def step(ctx: Context, inp: ExecutionIdInput) -> dict[str, Any]:
        await ctx.executions.step(ctx.require(), inp.executionId)
        return {"success": True}

    @router.mutation("setBreakpoints", input=BreakpointsInput)
    async def set_breakpoints(ctx: Context, inp: BreakpointsInput) -> dict[str, Any]:
        await ctx.executions.set_breakpoints(ctx.require(), inp.executionId, inp.nodeIds)
        return {"success": True, "nodeIds": list(dict.fromkeys(inp.nodeIds))}

    @router.query("getExecutionDetails", input=ExecutionIdInput)
    async def details(ctx: Context, inp: ExecutionIdInput) -> dict[str, Any]:
        return (await ctx.executions.details(ctx.require(), inp.executionId)).to_json()

    @router.query("getExecutionsTree", input=ExecutionIdInput)
    async def tree(ctx: Context, inp: ExecutionIdInput) -> list[dict[str, Any]]:
        nodes = await ctx.executions.tree(ctx.require(), inp.executionId)
        return [
            {"id": n.id, "parentId": n.parent_id, "level": n.level, "execution": n.execution.to_json()}
            for n in nodes
        ]

    @router.query("getRootExecutions", input=RootsInput)
    async def roots(ctx: Context, inp: RootsInput) -> list[dict[str, Any]]:
        items = await ctx.executions.roots(
            ctx.require(), inp.flowId, limit=inp.limit, after=inp.after, after_id=inp.afterId
        )
        return [
            {"execution": r.execution.to_json(), "levels": r.levels, "totalNested": r.total_nested}
            for r in items
        ]

    @router.subscription("subscribeToExecutionEvents", input=SubscribeInput)
    async def subscribe(ctx: Context, inp: SubscribeInput) -> AsyncIterator[Any]:
        # Checked before the subscription is accepted: a refused client never sees `started`.
        principal = ctx.require()
        start = inp.fromIndex
        if inp.lastEventId is not None:
            try:
                start = int(inp.lastEventId) + 1
            except ValueError:
                raise InvalidInput("lastEventId: must be the id of an event (an integer)") from None
        await ctx.executions.details(principal, inp.executionId)

        async def stream() -> AsyncIterator[Any]:
            async with ctx.executions.subscribe(
                principal,
                inp.executionId,
                from_index=start,
                event_types=inp.eventTypes,
                batch_size=inp.batchSize,
                batch_timeout_ms=inp.batchTimeoutMs,
            ) as batches:
                async for batch in batches:
                    if batch:
                        if ctx.on_delivery is not None:
                            ctx.on_delivery((now() - batch[-1].timestamp).total_seconds())
                        # One tracked message per batch, id = seq of its last event: a reconnect
                        # resumes right after it (upstream yields arrays of events; so do we).
                        yield tracked(str(batch[-1].seq), [event_wire(e) for e in batch])

        return stream()

    @router.mutation("uploadFlow", input=UploadInput)
    async def upload(ctx: Context, inp: UploadInput) -> dict[str, Any]:
        stored = await ctx.flows.upload(ctx.require(), inp.flow)
        return {"flowId": stored.flow.id, "version": stored.version}

    @router.query("getFlow", input=FlowIdInput)
    async def get_flow(ctx: Context, inp: FlowIdInput) -> dict[str, Any]:
        stored = await ctx.flows.get(ctx.require(), inp.flowId, inp.version)
        return {**flow_summary(stored), "flow": stored.flow.to_json()}

    @router.query("listFlows", input=ListFlowsInput)
    async def list_flows(ctx: Context, inp: ListFlowsInput) -> dict[str, Any]:
        page = await ctx.flows.list(ctx.require(), limit=inp.limit, cursor=inp.cursor)
        return {"items": [flow_summary(s) for s in page.items], "nextCursor": page.next_cursor}

    @router.mutation("deleteFlow", input=FlowIdInput)
    async def delete_flow(ctx: Context, inp: FlowIdInput) -> dict[str, Any]:
        await ctx.flows.delete(ctx.require(), inp.flowId)
        return {"success": True}

    @router.query("whoami")
    async def whoami(ctx: Context, _inp: Any) -> dict[str, Any]:
        p = ctx.require()
        return {"userId": p.user_id, "isAdmin": p.is_admin, "devMode": ctx.auth.dev_mode}

    return router
