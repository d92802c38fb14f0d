"""The test router of the tRPC spec (PROTOCOL.md §9.2) served by our tRPC transport.

Mounted three times, like the reference server of the conformance harness:
``/trpc`` (SuperJSON), ``/plain`` (no transformer) and ``/dev`` (SuperJSON, stacks in errors);
HTTP and WebSocket share each prefix. Test hook: ``POST /__admin/reconnect`` broadcasts the WS
``reconnect`` notification on every router.

Run: ``python tests/compat/trpc_test_app.py PORT [--keepalive]``; ``--keepalive`` turns on what the
harness' second reference instance has: WS keep-alive (PING after 300 ms of silence, 1 s for the
answer), SSE ``ping`` every 100 ms and ``reconnectAfterInactivityMs: 1000``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from chaingraph_executor.api.trpc import KeepAlive, TRPCServer, TRPCUvicornServer, trpc_routes
from chaingraph_executor.trpc import UNDEFINED, BigInt, RequestInfo, Router, StreamReturn, TRPCError, tracked
from chaingraph_executor.trpc.transformers import TransformerName

BASE = datetime(2024, 1, 1, tzinfo=UTC)


class GreetInput(BaseModel):
    name: str


class SlowInput(BaseModel):
    ms: int | float


class AddPostInput(BaseModel):
    title: str
    createdAt: datetime = Field(strict=True)


class OnPostInput(BaseModel):
    lastEventId: str | None = None
    limit: int | float = 3
    intervalMs: int | float = 20


class TickerInput(BaseModel):
    count: int = 2


class FlakyInput(BaseModel):
    lastEventId: str | None = None


def js_typeof(value: Any) -> str:
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, BigInt):
        return "bigint"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def build_router(transformer: TransformerName) -> Router:
    # like the reference's routers: no custom errorFormatter, so no data.zodError
    router = Router(transformer=transformer, zod_error=False)

    @router.query("greet", input=GreetInput)
    async def greet(ctx: dict[str, Any], input: GreetInput) -> dict[str, Any]:
        return {"greeting": f"hello {input.name}", "at": BASE}

    @router.query("echo")
    async def echo(ctx: dict[str, Any], input: Any) -> dict[str, Any]:
        return {"input": input, "type": js_typeof(input)}

    @router.query("whoami")
    async def whoami(ctx: dict[str, Any], input: Any) -> dict[str, Any]:
        return {"connectionParams": ctx["connectionParams"]}

    @router.query("slow", input=SlowInput)
    async def slow(ctx: dict[str, Any], input: SlowInput) -> dict[str, Any]:
        await asyncio.sleep(input.ms / 1000)
        return {"sleptMs": input.ms}

    @router.query("streamQuery")
    async def stream_query(ctx: dict[str, Any], input: Any) -> AsyncIterator[dict[str, Any]]:
        for i in range(1, 4):
            await asyncio.sleep(0.02)
            yield {"i": i, "at": BASE + timedelta(milliseconds=i)}
        yield StreamReturn("done")  # the reference's `return 'done'`

    @router.query("deferredQuery")
    async def deferred_query(ctx: dict[str, Any], input: Any) -> dict[str, Any]:
        async def later() -> dict[str, Any]:
            await asyncio.sleep(0.05)
            return {"value": "deferred", "at": BASE}

        deferred: Awaitable[dict[str, Any]] = later()
        return {"now": "immediate", "later": deferred}

    @router.query("notFoundErr")
    async def not_found_err(ctx: dict[str, Any], input: Any) -> None:
        raise TRPCError("NOT_FOUND", "thing not found")

    @router.query("boom")
    async def boom(ctx: dict[str, Any], input: Any) -> None:
        raise RuntimeError("kaboom")

    @router.mutation("addPost", input=AddPostInput)
    async def add_post(ctx: dict[str, Any], input: AddPostInput) -> dict[str, Any]:
        created = input.createdAt.astimezone(UTC)
        return {
            "id": "post-1",
            "title": input.title,
            "createdAt": created,
            "createdAtIso": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z",
        }

    @router.mutation("noInputMutation")
    async def no_input_mutation(ctx: dict[str, Any], input: Any) -> dict[str, Any]:
        return {"ok": True, "nothing": UNDEFINED}

    @router.mutation("forbiddenMutation")
    async def forbidden_mutation(ctx: dict[str, Any], input: Any) -> None:
        raise TRPCError("FORBIDDEN", "nope")

    @router.subscription("onPost", input=OnPostInput)
    async def on_post(ctx: dict[str, Any], input: OnPostInput) -> AsyncIterator[Any]:
        n = int(input.lastEventId) + 1 if input.lastEventId else 1
        while n <= input.limit:
            await asyncio.sleep(input.intervalMs / 1000)
            yield tracked(str(n), {"n": n, "title": f"post {n}", "at": BASE + timedelta(seconds=n)})
            n += 1

    @router.subscription("ticker", input=TickerInput | None)
    async def ticker(ctx: dict[str, Any], input: TickerInput | None) -> AsyncIterator[Any]:
        for i in range(input.count if input is not None else 2):
            await asyncio.sleep(0.01)
            yield {"i": i, "at": BASE}

    @router.subscription("whoamiSub")
    async def whoami_sub(ctx: dict[str, Any], input: Any) -> AsyncIterator[Any]:
        await asyncio.sleep(0.01)
        yield {"connectionParams": ctx["connectionParams"]}

    @router.subscription("mixedSub")
    async def mixed_sub(ctx: dict[str, Any], input: Any) -> AsyncIterator[Any]:
        await asyncio.sleep(0.01)
        yield tracked("a", {"k": "tracked-a"})
        await asyncio.sleep(0.01)
        yield {"k": "untracked"}
        await asyncio.sleep(0.01)
        yield tracked("b", {"k": "tracked-b"})

    @router.subscription("flakySub", input=FlakyInput | None)
    async def flaky_sub(ctx: dict[str, Any], input: FlakyInput | None) -> AsyncIterator[Any]:
        await asyncio.sleep(0.01)
        if input is None or not input.lastEventId:
            yield tracked("1", {"attempt": "first"})
            await asyncio.sleep(0.01)
            raise RuntimeError("transient failure")
        yield tracked("2", {"attempt": "resumed", "after": input.lastEventId})

    @router.subscription("failingSub")
    async def failing_sub(ctx: dict[str, Any], input: Any) -> AsyncIterator[Any]:
        await asyncio.sleep(0.01)
        yield {"before": "error"}
        raise TRPCError("FORBIDDEN", "subscription failed")

    return router


def create_context(info: RequestInfo) -> dict[str, Any]:
    return {"connectionParams": dict(info.connection_params) if info.connection_params is not None else None}


KEEPALIVE = KeepAlive(
    ws_ping_ms=300, ws_pong_wait_ms=1000, sse_ping_ms=100, sse_reconnect_after_inactivity_ms=1000
)


def build_app(*, keepalive: KeepAlive | None = None) -> Starlette:
    superjson_router = build_router("superjson")
    routes: list[BaseRoute] = []
    servers: list[TRPCServer] = []
    for prefix, router, dev in (
        ("/trpc", superjson_router, False),
        ("/plain", build_router("none"), False),
        ("/dev", superjson_router, True),
    ):
        mounted, server = trpc_routes(
            router, prefix=prefix, create_context=create_context, dev=dev, keepalive=keepalive
        )
        routes += mounted
        servers.append(server)

    async def reconnect(request: Request) -> PlainTextResponse:
        for server in servers:
            await server.broadcast_reconnect()
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/__admin/reconnect", reconnect, methods=["POST"]), *routes])
    app.state.trpc_servers = servers
    return app


def main() -> None:
    args = sys.argv[1:]
    port = int(args[0]) if args else 8010
    app = build_app(keepalive=KEEPALIVE if "--keepalive" in args else None)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    TRPCUvicornServer(config, app.state.trpc_servers).run()


if __name__ == "__main__":
    main()
