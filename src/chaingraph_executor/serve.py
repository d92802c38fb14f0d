"""Running the processes: the API (with or without the embedded worker) and the worker."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chaingraph_executor.api.app import ApiDeps, create_app
from chaingraph_executor.api.trpc import Limits
from chaingraph_executor.api.trpc.lifecycle import TRPCUvicornServer
from chaingraph_executor.backends.sql import schema_status
from chaingraph_executor.bootstrap import Services, build_services
from chaingraph_executor.settings import Mode, Settings

log = logging.getLogger(__name__)


def api_deps(sv: Services) -> ApiDeps:
    s = sv.settings

    async def ready() -> dict[str, Any]:
        current, head = await schema_status(s.app_database_url)
        return {"database_ok": True, "schema_ok": current == head, "schema": current, "head": head}

    async def stats() -> dict[str, Any]:
        counts = await sv.backend.executions.count_by_status()
        try:
            depth = await sv.dispatcher.queue_depth()
        except Exception:  # noqa: BLE001 - a metric must not fail the scrape
            depth = 0
        return {"by_status": counts, "queue_depth": depth}

    return ApiDeps(
        executions=sv.executions,
        flows=sv.flows,
        auth=sv.auth,
        limits=Limits(
            max_body_bytes=s.max_request_bytes,
            max_batch_size=s.max_batch_size,
            max_ws_message_bytes=s.max_ws_message_bytes,
            max_ws_subscriptions=s.max_subscriptions_per_connection,
        ),
        ready=ready,
        stats=stats,
    )


def worker_app(sv: Services) -> Starlette:
    started = time.time()

    async def health(_: Request) -> Response:
        return JSONResponse(
            {
                "status": "healthy",
                "executorId": sv.worker.executor_id if sv.worker else None,
                "uptime": round(time.time() - started, 3),
                "timestamp": datetime.now(UTC).isoformat(),
            }
        )

    return Starlette(routes=[Route("/health", health), Route("/ready", health)])


async def run_server(
    app: Starlette, host: str, port: int, on_ready: Callable[[int], Awaitable[None]] | None = None
) -> None:
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", ws="websockets-sansio"
    )
    trpc = getattr(app.state, "trpc", None)
    # Tell WebSocket clients to reconnect and end open streams before uvicorn waits for connections.
    server = TRPCUvicornServer(config, [trpc] if trpc is not None else [])
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn exposes only a flag
        await asyncio.sleep(0.01)
    if on_ready is not None and server.started:
        sockets = [s for srv in server.servers for s in srv.sockets]
        await on_ready(sockets[0].getsockname()[1] if sockets else port)
    await task


#: Allocations between young-generation collections (Python's default: 700). The service allocates
#: fast (events, rows, messages); collecting every 700 allocations cost more than it freed.
GC_THRESHOLDS = (20_000, 20, 20)


def freeze_startup_heap() -> None:
    """Put everything allocated while starting (modules, DBOS, SQLAlchemy, pydantic models, node
    classes…) out of the garbage collector's reach, and collect the young generations less often.
    A full collection then scans only what the running service allocated since, instead of
    stopping the process for 60 to 80 ms (docs/adr/0008)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def serve(settings: Settings, role: Mode, *, announce: Callable[[str], None] = print) -> None:
    async with build_services(settings, role) as sv:
        if role == "worker":
            app = worker_app(sv)
            executor = sv.worker.executor_id if sv.worker else ""
            what = f"worker {executor} (concurrency {settings.worker_concurrency})"
        else:
            app = create_app(api_deps(sv))
            what = "embedded service (API + worker)" if role == "embedded" else "API"

        async def ready(port: int) -> None:
            freeze_startup_heap()
            announce(f"chaingraph {what} listening on http://{settings.host}:{port}")

        await run_server(app, settings.host, settings.port, ready)
