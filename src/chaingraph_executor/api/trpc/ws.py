"""WebSocket transport for ``createWSClient`` + ``wsLink`` (PROTOCOL.md §4).

One ``WSConnection`` per socket:

* ``?connectionParams=1``: the first frame is ``{"method":"connectionParams","data":...}``; the
  context is created from it before any request runs (bad params → id:null PARSE_ERROR, close);
* JSON text frames, a single message or an array; an invalid frame (or any invalid element of an
  array) → ``{"id":null,"error":PARSE_ERROR}`` and nothing of it runs; ``id: null`` → PARSE_ERROR;
* query/mutation → ``{"id","result":{"type":"data","data"}}`` or ``{"id","error"}``;
* subscription → ``started``, ``data`` (tracked: ``result.id`` and ``{id, data}``), ``stopped``;
  errors before the start → only the error; an error while running → error then ``stopped``;
  ``subscription.stop`` cancels it and answers ``stopped``; unknown ids are ignored; a second
  subscription with an active id → BAD_REQUEST "Duplicate id N";
* ``params.lastEventId`` merged into the input; ``jsonrpc`` echoed; text ``PING`` → ``PONG``;
* optional server keep-alive (text ``PING`` after silence, close when nothing comes back);
* limits (ADR 0005): frame size (PAYLOAD_TOO_LARGE then close 1009), array length, concurrent
  subscriptions and calls (TOO_MANY_REQUESTS);
* closing the socket cancels everything it runs.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from chaingraph_executor.trpc.codes import TRPCError
from chaingraph_executor.trpc.envelopes import (
    WSParseError,
    WSRequest,
    WSStop,
    is_request_id,
    merge_last_event_id,
    parse_ws_connection_params,
    parse_ws_message,
)
from chaingraph_executor.trpc.request import RequestInfo
from chaingraph_executor.trpc.router import (
    StreamReturn,
    Tracked,
    aclose_quietly,
    discard_stream,
    is_data_stream,
)
from chaingraph_executor.trpc.superjson import UNDEFINED
from chaingraph_executor.trpc.transformers import dumps

if TYPE_CHECKING:
    from chaingraph_executor.api.trpc.server import TRPCServer

__all__ = ["WSConnection", "WSEndpoint"]

_STARTED: Final = {"type": "started"}
_STOPPED: Final = {"type": "stopped"}
_SEND_ERRORS: Final = (WebSocketDisconnect, RuntimeError, OSError)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Unexpected token {name} in JSON")


def _js_id(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class WSEndpoint:
    """ASGI app for the WebSocket route (one instance per server)."""

    def __init__(self, server: TRPCServer) -> None:
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await WSConnection(self.server, WebSocket(scope, receive, send)).run()


@dataclass(slots=True)
class _Subscription:
    task: asyncio.Task[None] | None = None
    running: bool = False  # the task has started (cancelling it now runs its cleanup)
    stop_requested: bool = False


class WSConnection:
    def __init__(self, server: TRPCServer, websocket: WebSocket) -> None:
        self.server = server
        self.ws = websocket
        self.transformer = server.transformer
        self.ctx: Any = None
        self.open = False
        self.subscriptions: dict[Any, _Subscription] = {}
        self.calls: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self._activity = asyncio.Event()
        self._last_rx = time.monotonic()

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        await self.ws.accept()
        self.open = True
        self.server.add_socket(self)
        keepalive: asyncio.Task[None] | None = None
        try:
            if self.server.closing:
                await self.close(code=1012)
                return
            if self.server.keepalive.ws_ping_ms:
                keepalive = asyncio.ensure_future(self._keepalive())
            if await self._init_context():
                await self._receive_loop()
        finally:
            self.open = False
            self.server.remove_socket(self)
            tasks = [t for t in (keepalive, *self.calls) if t is not None]
            tasks += [s.task for s in self.subscriptions.values() if s.task is not None]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self, *, code: int = 1000, reason: str = "", close_timeout: float = 2.0) -> None:
        """Close the socket (the receive loop ends when the client confirms) and cancel its work."""
        if not self.open:
            return
        self.open = False
        try:
            async with asyncio.timeout(close_timeout):
                async with self._send_lock:
                    await self.ws.close(code, reason)
        except (*_SEND_ERRORS, TimeoutError):
            pass
        for sub in self.subscriptions.values():
            if sub.task is not None:
                sub.task.cancel()
        for task in self.calls:
            task.cancel()

    async def _next_frame(self) -> tuple[str | bytes, bool] | None:
        """``(text or bytes, is_binary)`` or None once the client is gone."""
        try:
            message = await self.ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        self._last_rx = time.monotonic()
        self._activity.set()
        text = message.get("text")
        if text is not None:
            return text, False
        return message.get("bytes") or b"", True

    async def _init_context(self) -> bool:
        params: dict[str, str] | None = None
        if self.ws.query_params.get("connectionParams") == "1":
            timeout = self.server.limits.ws_connection_params_timeout_ms / 1000
            try:
                async with asyncio.timeout(timeout):
                    while True:
                        frame = await self._next_frame()
                        if frame is None:
                            return False
                        data, binary = frame
                        if not binary and data == "PING":
                            await self.send_text("PONG")
                            continue
                        if not binary and data == "PONG":
                            continue
                        break
            except TimeoutError:
                await self.close(code=1008, reason="connectionParams not received")
                return False
            try:
                try:
                    obj = json.loads(data, parse_constant=_reject_constant)
                except ValueError as exc:
                    raise TRPCError(
                        "PARSE_ERROR", "Malformed TRPCConnectionParamsMessage", cause=exc
                    ) from exc
                params = parse_ws_connection_params(obj).data
            except TRPCError as exc:
                await self._send_error(None, None, exc, None)
                await self.close(code=1008)
                return False
        client = self.ws.client
        info = RequestInfo(
            transport="ws",
            headers=self.ws.headers,
            cookies=self.ws.cookies,
            query_params=self.ws.query_params,
            connection_params=params,
            client=(client.host, client.port) if client is not None else None,
        )
        try:
            self.ctx = await self.server.create_context(info)
        except TRPCError as exc:
            await self._send_error(None, None, exc, None)
            await self.close(code=1008)
            return False
        return True

    async def _receive_loop(self) -> None:
        limits = self.server.limits
        while True:
            frame = await self._next_frame()
            if frame is None:
                return
            if not self.open:  # closing: drain until the client confirms
                continue
            data, binary = frame
            if not binary:
                if data == "PING":
                    await self.send_text("PONG")
                    continue
                if data == "PONG":
                    continue
            size = (
                len(data)
                if binary or len(data) * 4 <= limits.max_ws_message_bytes
                else len(str(data).encode())
            )
            if size > limits.max_ws_message_bytes:
                error = TRPCError(
                    "PAYLOAD_TOO_LARGE", f"Message is larger than {limits.max_ws_message_bytes} bytes"
                )
                await self._send_error(None, None, error, None)
                await self.close(code=1009, reason="message too big")
                continue
            if isinstance(data, bytes):
                try:
                    data = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    await self._send_error(None, None, TRPCError("PARSE_ERROR", str(exc), cause=exc), None)
                    continue
            await self._handle_frame(data)

    async def _keepalive(self) -> None:
        keepalive = self.server.keepalive
        ping = (keepalive.ws_ping_ms or 0) / 1000
        wait = keepalive.ws_pong_wait_ms / 1000
        while self.open:
            idle = time.monotonic() - self._last_rx
            if idle < ping:
                await asyncio.sleep(ping - idle)
                continue
            self._activity.clear()
            await self.send_text("PING")
            try:
                async with asyncio.timeout(wait):
                    await self._activity.wait()
            except TimeoutError:
                await self.close(code=1011, reason="keep-alive timeout")
                return

    # ------------------------------------------------------------------ messages
    async def _handle_frame(self, text: str) -> None:
        try:
            obj = json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            await self._send_error(None, None, TRPCError("PARSE_ERROR", str(exc), cause=exc), None)
            return
        items = obj if isinstance(obj, list) else [obj]
        if isinstance(obj, list) and len(items) > self.server.limits.max_batch_size:
            await self._reject_batch(items)
            return
        try:
            messages = [parse_ws_message(item, self.transformer) for item in items]
        except WSParseError as exc:
            await self._send_error(None, None, TRPCError("PARSE_ERROR", str(exc), cause=exc), None)
            return
        for msg in messages:
            await self._dispatch(msg)

    async def _reject_batch(self, items: list[Any]) -> None:
        error = TRPCError("BAD_REQUEST", "Batch call exceeds maximum size")
        answered = False
        for raw in items:
            if (
                isinstance(raw, dict)
                and raw.get("method") != "subscription.stop"
                and is_request_id(raw.get("id"))
            ):
                await self._send_error(raw["id"], "2.0" if raw.get("jsonrpc") == "2.0" else None, error, None)
                answered = True
        if not answered:
            await self._send_error(None, None, error, None)

    async def _dispatch(self, msg: WSRequest | WSStop) -> None:
        if msg.id is None:
            await self._send_error(None, msg.jsonrpc, TRPCError("PARSE_ERROR", "`id` is required"), None)
            return
        if isinstance(msg, WSStop):
            sub = self.subscriptions.get(msg.id)
            if sub is not None and sub.task is not None and not sub.stop_requested:
                sub.stop_requested = True
                if sub.running:  # else it sees the flag when it starts
                    sub.task.cancel()
            return
        value = msg.input
        if msg.last_event_id is not None:
            value = merge_last_event_id(value, msg.last_event_id)
        limits = self.server.limits
        if msg.method == "subscription":
            if msg.id in self.subscriptions:
                await self._send_error(
                    msg.id, msg.jsonrpc, TRPCError("BAD_REQUEST", f"Duplicate id {_js_id(msg.id)}"), msg.path
                )
                return
            if len(self.subscriptions) >= limits.max_ws_subscriptions:
                error = TRPCError(
                    "TOO_MANY_REQUESTS",
                    f"Too many subscriptions on this connection (at most {limits.max_ws_subscriptions})",
                )
                await self._send_error(msg.id, msg.jsonrpc, error, msg.path)
                return
            sub = _Subscription()
            self.subscriptions[msg.id] = sub
            sub.task = asyncio.ensure_future(self._subscription(msg, value, sub))
            return
        if len(self.calls) >= limits.max_ws_pending_calls:
            error = TRPCError(
                "TOO_MANY_REQUESTS",
                f"Too many pending calls on this connection (at most {limits.max_ws_pending_calls})",
            )
            await self._send_error(msg.id, msg.jsonrpc, error, msg.path)
            return
        task = asyncio.ensure_future(self._call(msg, value))
        self.calls.add(task)
        task.add_done_callback(self.calls.discard)

    def _procedure(self, msg: WSRequest) -> Any:
        proc = self.server.router.get(msg.path)
        if proc is None or proc.type != msg.method:
            raise TRPCError("NOT_FOUND", f'No "{msg.method}"-procedure on path "{msg.path}"')
        return proc

    async def _call(self, msg: WSRequest, value: Any) -> None:
        try:
            data = await self._procedure(msg).call(self.ctx, value)
            if is_data_stream(data):
                await discard_stream(data)
                raise TRPCError(
                    "UNSUPPORTED_MEDIA_TYPE",
                    f"Cannot return an async iterable or observable from a {msg.method} procedure "
                    "with WebSockets",
                )
            text = dumps(self._frame(msg.id, msg.jsonrpc, result=self._data(data)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the call's error frame
            await self._send_error(msg.id, msg.jsonrpc, exc, msg.path)
            return
        await self.send_text(text)

    async def _subscription(self, msg: WSRequest, value: Any, sub: _Subscription) -> None:
        sub.running = True
        try:
            if sub.stop_requested:  # stopped before it even started
                await self.send_json(self._frame(msg.id, msg.jsonrpc, result=_STOPPED))
                return
            try:
                source = await self._procedure(msg).call(self.ctx, value)
            except asyncio.CancelledError:
                if not sub.stop_requested:
                    raise
                _uncancel()
                await self.send_json(self._frame(msg.id, msg.jsonrpc, result=_STOPPED))
                return
            except Exception as exc:  # noqa: BLE001 - failed before it started: error only
                await self._send_error(msg.id, msg.jsonrpc, exc, msg.path)
                return
            iterator = aiter(source)
            try:
                await self.send_json(self._frame(msg.id, msg.jsonrpc, result=_STARTED))
                async for item in iterator:
                    if type(item) is StreamReturn:
                        break
                    if type(item) is Tracked:
                        result = self._data({"id": item.id, "data": item.data})
                        result["id"] = item.id
                    else:
                        result = self._data(item)
                    await self.send_text(dumps(self._frame(msg.id, msg.jsonrpc, result=result)))
            except asyncio.CancelledError:
                if not sub.stop_requested:
                    raise
                _uncancel()
            except Exception as exc:  # noqa: BLE001 - error, then stopped
                await self._send_error(msg.id, msg.jsonrpc, exc, msg.path)
            finally:
                await aclose_quietly(iterator)
            await self.send_json(self._frame(msg.id, msg.jsonrpc, result=_STOPPED))
        finally:
            if self.subscriptions.get(msg.id) is sub:
                del self.subscriptions[msg.id]

    # ------------------------------------------------------------------ output
    def _data(self, value: Any) -> dict[str, Any]:
        encoded = self.transformer.serialize(value)
        if encoded is UNDEFINED:
            return {"type": "data"}
        return {"type": "data", "data": encoded}

    @staticmethod
    def _frame(msg_id: Any, jsonrpc: str | None, **body: Any) -> dict[str, Any]:
        frame: dict[str, Any] = {"id": msg_id}
        if jsonrpc is not None:
            frame["jsonrpc"] = jsonrpc
        frame.update(body)
        return frame

    async def _send_error(
        self, msg_id: Any, jsonrpc: str | None, exc: BaseException, path: str | None
    ) -> None:
        shape = self.server.error_shape(exc, path)
        await self.send_json(self._frame(msg_id, jsonrpc, error=self.transformer.serialize(shape)))

    async def send_json(self, frame: dict[str, Any]) -> None:
        await self.send_text(dumps(frame))

    async def send_text(self, text: str) -> None:
        if not self.open:
            return
        async with self._send_lock:
            if not self.open:
                return
            try:
                await self.ws.send_text(text)
            except _SEND_ERRORS:
                self.open = False


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
