"""HTTP transport: httpLink, httpBatchLink, httpBatchStreamLink and httpSubscriptionLink (SSE).

PROTOCOL.md §2 and §3: ``<prefix>/<path>`` (``batch=1`` → comma-separated paths), queries by
GET (``?input=``), mutations by POST (JSON body, empty = no input), 405 with ``allow`` for a wrong
method, 415 for a POST that is not ``application/json``, HEAD → 204, request-level errors as one
error object, per-call errors in the array, the 207 status rule, JSONL streaming when the client
sends ``trpc-accept: application/jsonl`` (or ``accept`` listing it) with a batch, and SSE for a
subscription (``Last-Event-ID`` / ``?lastEventId=`` merged into the input).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from starlette.datastructures import Headers, QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from chaingraph_executor.api.trpc.streaming import send_response, stream_response
from chaingraph_executor.trpc.codes import TRPCError
from chaingraph_executor.trpc.envelopes import (
    batch_status,
    error_envelope,
    merge_last_event_id,
    parse_connection_params_json,
    result_envelope,
)
from chaingraph_executor.trpc.jsonl import CallOutcome, jsonl_stream
from chaingraph_executor.trpc.request import RequestInfo
from chaingraph_executor.trpc.router import Procedure, discard_stream, is_data_stream
from chaingraph_executor.trpc.sse import SSE_HEADERS, sse_stream
from chaingraph_executor.trpc.superjson import UNDEFINED, SuperJSONError
from chaingraph_executor.trpc.transformers import dumps

if TYPE_CHECKING:
    from chaingraph_executor.api.trpc.server import TRPCServer

__all__ = ["HTTPEndpoint"]

VARY: Final = ("vary", "trpc-accept, accept")
JSON_HEADERS: Final = (("content-type", "application/json"), VARY)

_ACCEPTED_METHODS: Final[Mapping[str, tuple[str, ...]]] = {
    "query": ("GET",),
    "mutation": ("POST",),
    "subscription": ("GET",),
}
_ACCEPTED_WITH_OVERRIDE: Final[Mapping[str, tuple[str, ...]]] = {
    "query": ("GET", "POST"),
    "mutation": ("POST",),
    "subscription": ("GET", "POST"),
}


@dataclass(frozen=True, slots=True)
class _BadInput:
    error: TRPCError


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Unexpected token {name} in JSON")


def _parse_json(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def _accepts_jsonl(headers: Headers) -> bool:
    trpc_accept = headers.get("trpc-accept")
    if trpc_accept is not None:
        return trpc_accept == "application/jsonl"
    accept = headers.get("accept")
    return accept is not None and any(part.strip() == "application/jsonl" for part in accept.split(","))


def _last_event_id(headers: Headers, query: QueryParams) -> str | None:
    return headers.get("last-event-id") or query.get("lastEventId") or query.get("Last-Event-Id") or None


def _status_of(shape: Mapping[str, Any], fallback: int) -> int:
    data = shape.get("data")
    status = data.get("httpStatus") if isinstance(data, Mapping) else None
    return status if isinstance(status, int) else fallback


class HTTPEndpoint:
    """ASGI app for ``<prefix>/<path>`` (one instance per server)."""

    def __init__(self, server: TRPCServer) -> None:
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "HEAD":
            await send_response(send, 204, b"", [VARY])
            return
        await _Exchange(self.server, scope, receive, send).handle()


class _Exchange:
    """One HTTP request: parse, create the context, run the calls, answer."""

    def __init__(self, server: TRPCServer, scope: Scope, receive: Receive, send: Send) -> None:
        self.server = server
        self.receive = receive
        self.send = send
        self.request = Request(scope, receive)
        self.method: str = scope["method"]
        path = str(scope.get("path_params", {}).get("path", ""))
        self.path = path[:-1] if path.endswith("/") else path
        self.query = self.request.query_params
        self.is_batch = self.query.get("batch") == "1"
        self.paths: list[str] = self.path.split(",") if self.is_batch else [self.path]
        self.procs: list[Procedure | None] = []
        self.inputs: list[Any] = []
        self.extra_headers: dict[str, str] = {}
        self.ctx: Any = None

    # ------------------------------------------------------------------ request level
    async def handle(self) -> None:
        headers = self.request.headers
        is_stream = _accepts_jsonl(headers)
        try:
            self._check_content_type(headers)
            limits = self.server.limits
            if self.is_batch and len(self.paths) > limits.max_batch_size:
                raise TRPCError("BAD_REQUEST", "Batch call exceeds maximum size")
            self.procs = [self.server.router.get(p) for p in self.paths]
            types = list(dict.fromkeys(proc.type for proc in self.procs if proc is not None))
            if len(types) > 1:
                raise TRPCError("BAD_REQUEST", f"Cannot mix procedure types in call: {', '.join(types)}")
            params_text = self.query.get("connectionParams")
            connection_params = None if params_text is None else parse_connection_params_json(params_text)
            if is_stream and not self.is_batch:
                raise TRPCError("BAD_REQUEST", "Streaming requests must be batched (you can do a batch of 1)")
            raw = await self._read_input()
            is_sse = not self.is_batch and types == ["subscription"]
            client = self.request.client
            info = RequestInfo(
                transport="sse" if is_sse else "http",
                headers=headers,
                cookies=self.request.cookies,
                query_params=self.query,
                connection_params=connection_params,
                client=(client.host, client.port) if client is not None else None,
                paths=tuple(self.paths),
            )
            self.ctx = await self.server.create_context(info)
        except TRPCError as exc:
            await self._send_json(self._error_body(exc, None), exc.http_status)
            return
        except ClientDisconnect:  # gone while sending its body: nobody to answer
            return
        self.inputs = self._decode_inputs(raw)
        if not self.is_batch:
            if types == ["subscription"]:
                await self._sse()
            else:
                await self._single()
        elif is_stream:
            await self._jsonl()
        else:
            await self._batch()

    def _check_content_type(self, headers: Headers) -> None:
        if self.method == "GET":
            return
        content_type = headers.get("content-type")
        if content_type is None:
            raise TRPCError("UNSUPPORTED_MEDIA_TYPE", "Missing content-type header")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise TRPCError("UNSUPPORTED_MEDIA_TYPE", f'Unsupported content-type "{content_type}"')

    async def _read_input(self) -> str | None:
        if self.method == "GET":
            return self.query.get("input")
        limit = self.server.limits.max_body_bytes
        too_large = TRPCError("PAYLOAD_TOO_LARGE", f"Request body is larger than {limit} bytes")
        declared = self.request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        body = bytearray()
        async for chunk in self.request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TRPCError("BAD_REQUEST", "Request body is not valid UTF-8", cause=exc) from exc

    def _decode_inputs(self, raw: str | None) -> list[Any]:
        """One decoded input per call (``UNDEFINED`` when absent, ``_BadInput`` when unusable)."""
        n = len(self.paths)
        if not raw:
            return [UNDEFINED] * n
        try:
            parsed = _parse_json(raw)
        except ValueError as exc:
            return [_BadInput(TRPCError("BAD_REQUEST", str(exc), cause=exc))] * n
        if not self.is_batch:
            return [self._deserialize(parsed)]
        if not isinstance(parsed, dict):
            bad = _BadInput(TRPCError("BAD_REQUEST", '"input" needs to be an object when doing a batch call'))
            return [bad] * n
        return [self._deserialize(parsed[str(i)]) if str(i) in parsed else UNDEFINED for i in range(n)]

    def _deserialize(self, payload: Any) -> Any:
        try:
            return self.server.transformer.deserialize(payload)
        except (SuperJSONError, ValueError, TypeError) as exc:
            return _BadInput(TRPCError("BAD_REQUEST", str(exc), cause=exc))

    # ------------------------------------------------------------------ calls
    async def _run(self, index: int) -> Any:
        proc = self.procs[index]
        path = self.paths[index]
        if proc is None:
            raise TRPCError("NOT_FOUND", f'No procedure found on path "{path}"')
        override = self.server.allow_method_override and self.method == "POST"
        if self.method not in (_ACCEPTED_WITH_OVERRIDE if override else _ACCEPTED_METHODS)[proc.type]:
            accepted = _ACCEPTED_WITH_OVERRIDE if self.server.allow_method_override else _ACCEPTED_METHODS
            self.extra_headers["allow"] = ", ".join(accepted[proc.type])
            raise TRPCError(
                "METHOD_NOT_SUPPORTED",
                f'Unsupported {self.method}-request to {proc.type} procedure at path "{path}"',
            )
        if proc.type == "subscription" and self.is_batch:
            raise TRPCError("BAD_REQUEST", "Cannot batch subscription calls")
        value = self.inputs[index]
        if isinstance(value, _BadInput):
            raise value.error
        if proc.type == "subscription":
            value = merge_last_event_id(value, _last_event_id(self.request.headers, self.query))
        return await proc.call(self.ctx, value)

    async def _outcome(self, index: int) -> tuple[Any, BaseException | None]:
        """``(data, None)`` or ``(None, error)``; stream-like data is refused (not streaming)."""
        try:
            data = await self._run(index)
            if is_data_stream(data):
                await discard_stream(data)
                raise TRPCError(
                    "UNSUPPORTED_MEDIA_TYPE",
                    "Cannot use stream-like response in non-streaming request - use httpBatchStreamLink",
                )
            return data, None
        except Exception as exc:  # noqa: BLE001 - every failure becomes that call's error
            return None, exc

    def _envelope(self, index: int, data: Any, error: BaseException | None) -> tuple[dict[str, Any], int]:
        transformer = self.server.transformer
        if error is None:
            try:
                return result_envelope(data, transformer), 200
            except (SuperJSONError, TypeError, ValueError) as exc:
                error = exc
        shape = self.server.error_shape(error, self.paths[index])
        return error_envelope(shape, transformer), _status_of(
            shape, self.server.router.to_trpc_error(error).http_status
        )

    def _error_body(self, error: TRPCError, path: str | None) -> dict[str, Any]:
        return error_envelope(self.server.error_shape(error, path), self.server.transformer)

    async def _single(self) -> None:
        data, error = await self._outcome(0)
        body, status = self._envelope(0, data, error)
        await self._send_json(body, status)

    async def _batch(self) -> None:
        outcomes = await asyncio.gather(*(self._outcome(i) for i in range(len(self.paths))))
        envelopes = [self._envelope(i, data, error) for i, (data, error) in enumerate(outcomes)]
        await self._send_json(
            [body for body, _ in envelopes], batch_status(status for _, status in envelopes)
        )

    async def _jsonl(self) -> None:
        async def outcome(index: int) -> CallOutcome:
            try:
                return CallOutcome(data=await self._run(index))
            except Exception as exc:  # noqa: BLE001 - the call's error line
                return CallOutcome(error=self.server.error_shape(exc, self.paths[index]))

        body = jsonl_stream(
            [functools.partial(outcome, i) for i in range(len(self.paths))],
            serialize=self.server.transformer.serialize,
            format_error=lambda index, exc: self.server.error_shape(exc, self.paths[index]),
            ping_ms=self.server.keepalive.jsonl_ping_ms,
        )
        await self._stream(200, [*JSON_HEADERS], body)

    async def _sse(self) -> None:
        try:
            source: Any = await self._run(0)
        except Exception as exc:  # noqa: BLE001 - sent as serialized-error after connected
            source = exc
        keepalive = self.server.keepalive
        options = {}
        if keepalive.sse_reconnect_after_inactivity_ms:
            options["reconnectAfterInactivityMs"] = keepalive.sse_reconnect_after_inactivity_ms
        body = sse_stream(
            source,
            serialize=self.server.transformer.serialize,
            format_error=lambda exc: self.server.error_shape(exc, self.paths[0]),
            last_event_id=_last_event_id(self.request.headers, self.query),
            ping_ms=keepalive.sse_ping_ms,
            client_options=options,
        )
        await self._stream(200, [*SSE_HEADERS.items(), VARY], body)

    # ------------------------------------------------------------------ output
    async def _stream(self, status: int, headers: Sequence[tuple[str, str]], body: Any) -> None:
        stop = self.server.open_stream()
        try:
            await stream_response(self.receive, self.send, status, headers, body, stop=stop)
        finally:
            self.server.close_stream(stop)

    async def _send_json(self, body: Any, status: int) -> None:
        headers = [*JSON_HEADERS, *self.extra_headers.items()]
        await send_response(self.send, status, dumps(body).encode(), headers)
