"""``TRPCServer``: serves one ``Router`` over HTTP, SSE and WebSocket on one path prefix.

It owns the transport settings (transformer, dev stacks, limits, keep-alives), context creation,
error reporting and the registry of live WebSockets and streams, so that a deploy can tell every
WebSocket client to reconnect (``broadcast_reconnect``, PROTOCOL.md §4.3) and end every
long-lived connection (``close``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute, Route, WebSocketRoute

from chaingraph_executor.api.trpc.config import KeepAlive, Limits
from chaingraph_executor.api.trpc.http import HTTPEndpoint
from chaingraph_executor.api.trpc.ws import WSEndpoint
from chaingraph_executor.trpc.codes import TRPCError
from chaingraph_executor.trpc.request import RequestInfo
from chaingraph_executor.trpc.router import Router
from chaingraph_executor.trpc.transformers import Transformer, TransformerName, get_transformer

if TYPE_CHECKING:
    from chaingraph_executor.api.trpc.ws import WSConnection

__all__ = ["CreateContext", "OnError", "TRPCServer", "trpc_routes"]

_log = logging.getLogger("chaingraph_executor.api.trpc")

#: ``create_context(info)`` → the app's context (sync or async); raise ``TRPCError`` to refuse
CreateContext = Callable[[RequestInfo], Any]
#: ``on_error(error, path)`` — every error sent to a client (for logs/metrics)
OnError = Callable[[TRPCError, "str | None"], None]

RECONNECT_FRAME = '{"id":null,"method":"reconnect"}'


def _default_context(info: RequestInfo) -> RequestInfo:
    return info


class TRPCServer:
    """The tRPC transport for one router; mount its :meth:`routes` in a Starlette app."""

    def __init__(
        self,
        router: Router,
        *,
        create_context: CreateContext | None = None,
        limits: Limits | None = None,
        keepalive: KeepAlive | None = None,
        dev: bool = False,
        transformer: TransformerName | Transformer | None = None,
        allow_method_override: bool = False,
        on_error: OnError | None = None,
    ) -> None:
        self.router = router
        self.transformer: Transformer = (
            router.transformer if transformer is None else get_transformer(transformer)
        )
        self.create_context_fn: CreateContext = create_context or _default_context
        self.limits = limits or Limits()
        self.keepalive = keepalive or KeepAlive()
        self.dev = dev
        self.allow_method_override = allow_method_override
        self.on_error = on_error
        self._sockets: set[WSConnection] = set()
        self._streams: set[asyncio.Event] = set()
        self._closing = False

    # ------------------------------------------------------------------ wiring
    def routes(self, prefix: str = "/trpc") -> list[BaseRoute]:
        """HTTP ``<prefix>/<path>`` and WebSocket ``<prefix>`` routes (absolute: add them to the
        app's routes as they are, not under a ``Mount``)."""
        base = "/" + prefix.strip("/") if prefix.strip("/") else ""
        http = HTTPEndpoint(self)
        ws = WSEndpoint(self)
        routes: list[BaseRoute] = [WebSocketRoute(base or "/", ws), Route(base + "/{path:path}", http)]
        if base:
            routes += [WebSocketRoute(base + "/", ws), Route(base, http)]
        return routes

    # ------------------------------------------------------------------ context & errors
    async def create_context(self, info: RequestInfo) -> Any:
        try:
            ctx = self.create_context_fn(info)
            if inspect.isawaitable(ctx):
                ctx = await ctx
        except TRPCError:
            raise
        except Exception as exc:  # an app error while creating the context
            raise self.router.to_trpc_error(exc) from exc
        return ctx

    def error_shape(self, exc: BaseException, path: str | None) -> dict[str, Any]:
        """Untransformed shape of an error about to be sent, reported to ``on_error``/logs."""
        error = self.router.to_trpc_error(exc)
        self.report(error, path)
        return self.router.error_shape(error, path=path, dev=self.dev)

    def report(self, error: TRPCError, path: str | None) -> None:
        if error.code == "INTERNAL_SERVER_ERROR" and error.__cause__ is not None:
            _log.error("tRPC %s failed: %s", path or "<request>", error.message, exc_info=error.__cause__)
        if self.on_error is not None:
            try:
                self.on_error(error, path)
            except Exception:  # noqa: BLE001 - a failing error hook must not break the response
                _log.exception("tRPC on_error hook failed")

    # ------------------------------------------------------------------ registry
    @property
    def closing(self) -> bool:
        return self._closing

    def add_socket(self, conn: WSConnection) -> None:
        self._sockets.add(conn)

    def remove_socket(self, conn: WSConnection) -> None:
        self._sockets.discard(conn)

    def open_stream(self) -> asyncio.Event:
        """A stop signal for one SSE/JSONL response (set by :meth:`close`); release it with
        :meth:`close_stream`."""
        stop = asyncio.Event()
        if self._closing:
            stop.set()
        self._streams.add(stop)
        return stop

    def close_stream(self, stop: asyncio.Event) -> None:
        self._streams.discard(stop)

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def open_subscriptions(self) -> int:
        """Live subscriptions: SSE/JSONL streams plus the subscriptions of every WebSocket."""
        return len(self._streams) + sum(len(conn.subscriptions) for conn in self._sockets)

    async def broadcast_reconnect(self) -> None:
        """Send ``{"id":null,"method":"reconnect"}`` to every open WebSocket (clients move away)."""
        await asyncio.gather(*(conn.send_text(RECONNECT_FRAME) for conn in list(self._sockets)))

    async def close(self, *, code: int = 1012, close_timeout: float = 2.0) -> None:
        """Close every WebSocket (``code``, default 1012 service restart) and end every SSE/JSONL
        stream (clients see a network drop and reconnect elsewhere, resuming by Last-Event-ID).

        Final: afterwards new sockets are closed and new streams end at once."""
        self._closing = True
        sockets = list(self._sockets)
        await asyncio.gather(*(conn.close(code=code, close_timeout=close_timeout) for conn in sockets))
        for stop in list(self._streams):
            stop.set()

    async def shutdown(self, *, grace: float = 0.5, code: int = 1012) -> None:
        """``broadcast_reconnect()``, give clients ``grace`` seconds to move, then ``close()``."""
        await self.broadcast_reconnect()
        if grace > 0 and self._sockets:
            await asyncio.sleep(grace)
        await self.close(code=code)


def trpc_routes(
    router: Router,
    *,
    prefix: str = "/trpc",
    create_context: CreateContext | None = None,
    limits: Limits | None = None,
    keepalive: KeepAlive | None = None,
    dev: bool = False,
    transformer: TransformerName | Transformer | None = None,
    allow_method_override: bool = False,
    on_error: OnError | None = None,
) -> tuple[list[BaseRoute], TRPCServer]:
    """Routes for ``router`` under ``prefix`` plus the server (``broadcast_reconnect``/``close``)."""
    server = TRPCServer(
        router,
        create_context=create_context,
        limits=limits,
        keepalive=keepalive,
        dev=dev,
        transformer=transformer,
        allow_method_override=allow_method_override,
        on_error=on_error,
    )
    return server.routes(prefix), server
