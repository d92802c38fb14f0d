"""The HTTP application: tRPC under ``/trpc`` (HTTP, batching, JSONL, SSE and WebSocket on one
port), plus ``/health``, ``/ready`` and ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chaingraph_executor.api.procedures import Context, build_router
from chaingraph_executor.api.trpc import Limits, trpc_routes
from chaingraph_executor.errors import Unauthenticated
from chaingraph_executor.services.auth import AuthService
from chaingraph_executor.services.executions import ExecutionService
from chaingraph_executor.services.flows import FlowService
from chaingraph_executor.trpc.request import RequestInfo


@dataclass
class ApiDeps:
    executions: ExecutionService
    flows: FlowService
    auth: AuthService
    limits: Limits
    ready: Callable[[], Awaitable[dict[str, Any]]]
    stats: Callable[[], Awaitable[dict[str, Any]]]
    dev_errors: bool = False


def token_of(info: RequestInfo) -> str | None:
    """WS ``connectionParams`` (``sessionBadAI`` or ``token``), then ``Authorization: Bearer``,
    then the ``session`` cookie."""
    params = info.connection_params or {}
    for key in ("sessionBadAI", "token"):
        value = params.get(key)
        if value:
            return str(value)
    auth = info.headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return info.cookies.get("session") or None


def create_app(deps: ApiDeps) -> Starlette:
    router = build_router()
    started = time.time()

    registry = CollectorRegistry()
    by_status = Gauge("chaingraph_executions", "executions by status", ["status"], registry=registry)
    subs = Gauge("chaingraph_active_subscriptions", "open subscription streams", registry=registry)
    sockets = Gauge("chaingraph_websockets", "open WebSocket connections", registry=registry)
    queue = Gauge(
        "chaingraph_queue_depth", "executions waiting to be dequeued by a worker", registry=registry
    )
    lag = Histogram(
        "chaingraph_event_lag_seconds",
        "time from an event's creation to its delivery to a subscriber",
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        registry=registry,
    )

    async def create_context(info: RequestInfo) -> Context:
        try:
            principal = await deps.auth.authenticate(token_of(info))
            error = None
        except Unauthenticated as exc:
            principal, error = None, exc.message
        return Context(deps.executions, deps.flows, deps.auth, principal, error, lag.observe)

    routes, server = trpc_routes(
        router, prefix="/trpc", create_context=create_context, limits=deps.limits, dev=deps.dev_errors
    )

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "healthy", "uptime": round(time.time() - started, 3)})

    async def ready(_: Request) -> Response:
        try:
            report = await deps.ready()
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as 503
            return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
        ok = all(v is True for k, v in report.items() if k.endswith("_ok"))
        return JSONResponse(
            {"status": "ready" if ok else "unavailable", **report}, status_code=200 if ok else 503
        )

    async def metrics(_: Request) -> Response:
        stats = await deps.stats()
        for status, count in stats.get("by_status", {}).items():
            by_status.labels(status=status).set(count)
        subs.set(server.open_subscriptions)
        sockets.set(server.open_sockets)
        queue.set(stats.get("queue_depth", 0))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await server.shutdown()

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET", "HEAD"]),
            Route("/healthz", health, methods=["GET", "HEAD"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *routes,
        ],
        lifespan=lifespan,
    )
    app.state.trpc = server
    return app
