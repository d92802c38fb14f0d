"""Shutting down with live tRPC connections under uvicorn (ADR 0005).

On SIGTERM uvicorn first waits for every open connection to finish, and only then runs the
lifespan shutdown. SSE streams and WebSockets never finish by themselves, so
``TRPCServer.shutdown()`` (``reconnect`` to WebSocket clients, then close sockets and streams)
must run *before* that wait: :class:`TRPCUvicornServer` does it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import uvicorn

from chaingraph_executor.api.trpc.server import TRPCServer

__all__ = ["TRPCUvicornServer"]


class TRPCUvicornServer(uvicorn.Server):
    """``uvicorn.Server`` that shuts the given tRPC servers down before waiting for connections."""

    def __init__(
        self, config: uvicorn.Config, trpc_servers: Sequence[TRPCServer], *, grace: float = 0.5
    ) -> None:
        super().__init__(config)
        self.trpc_servers = list(trpc_servers)
        self.grace = grace

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.trpc_servers:
            await server.broadcast_reconnect()
        if self.grace > 0 and any(server.open_sockets for server in self.trpc_servers):
            await asyncio.sleep(self.grace)
        for server in self.trpc_servers:
            await server.close()
        await super().shutdown(sockets)
