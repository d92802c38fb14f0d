"""Starlette/ASGI transport of the tRPC router: HTTP (batch, JSONL), SSE and WebSocket.

Usage::

    routes, trpc = trpc_routes(router, prefix="/trpc", create_context=make_ctx)
    app = Starlette(routes=routes)
    # run with TRPCUvicornServer(uvicorn.Config(app, ...), [trpc]).serve(): on SIGTERM it tells
    # WebSocket clients to reconnect and ends sockets and streams before uvicorn waits for them
    # (or call ``await trpc.shutdown()`` yourself before the server stops)
"""

from __future__ import annotations

from chaingraph_executor.api.trpc.config import KeepAlive, Limits
from chaingraph_executor.api.trpc.lifecycle import TRPCUvicornServer
from chaingraph_executor.api.trpc.server import CreateContext, OnError, TRPCServer, trpc_routes
from chaingraph_executor.trpc.request import RequestInfo

__all__ = [
    "CreateContext",
    "KeepAlive",
    "Limits",
    "OnError",
    "RequestInfo",
    "TRPCServer",
    "TRPCUvicornServer",
    "trpc_routes",
]
