"""The tRPC wire, client side: HTTP calls and batches, and subscriptions over WebSocket or SSE.

HTTP (PROTOCOL.md §2): a query is ``GET <base>/trpc/<path>?input=<superjson>``, a mutation
``POST <base>/trpc/<path>`` with the superjson envelope as the body; a batch joins the paths with
commas, adds ``batch=1`` and sends ``{"0": input0, "1": input1, ...}``; the answer is one
envelope per call (or a single envelope that then applies to every call).

WebSocket (§4): ``ws(s)://<base>/trpc`` (``?connectionParams=1`` and a first
``{"method": "connectionParams", "data": {"token": ...}}`` frame when a token is set), then
``{"id": 1, "method": "subscription", "params": {"path", "input", "lastEventId"?}}``; the server
answers ``started``, ``data`` frames (tracked: ``result.id`` and ``{"id", "data"}``), ``stopped``.
A dropped socket, a close without ``stopped`` or the server's ``reconnect`` notification make
the stream reconnect with backoff and resubscribe with ``lastEventId`` = the last id it saw, so
the server continues right after it: no gap, no duplicate.

SSE (§3): ``GET <base>/trpc/<path>?input=...`` with ``accept: text/event-stream``; resuming sends
``Last-Event-ID``. Used when the client was given an httpx transport (which cannot carry a
WebSocket), or on request.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from chaingraph_executor.client._calls import Call
from chaingraph_executor.client._errors import (
    ExecutorClientError,
    RemoteError,
    TransportError,
    code_of_jsonrpc,
)
from chaingraph_executor.trpc import superjson

T = TypeVar("T")

SubscriptionTransport = Literal["auto", "websocket", "sse"]

_SUBSCRIPTION_ID = 1


def normalize_base_url(url: str) -> str:
    """``localhost:4021`` → ``http://localhost:4021``; a trailing ``/`` or ``/trpc`` is dropped."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"server URL must start with http:// or https://, got {url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/trpc"):
        path = path[: -len("/trpc")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def websocket_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path + "/trpc", "", ""))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_input(value: Any) -> Any:
    return superjson.serialize(value)


def decode_error(raw: Any, *, http_status: int | None = None) -> RemoteError:
    """A tRPC error shape (superjson-enveloped or plain) → :class:`RemoteError`."""
    shape = raw
    if isinstance(raw, dict) and "json" in raw:
        try:
            shape = superjson.deserialize(raw)
        except ValueError:
            shape = raw.get("json")
    if not isinstance(shape, dict):
        message = f"malformed error from the server: {shape!r}"
        return RemoteError("INTERNAL_SERVER_ERROR", message, http_status)
    raw_data = shape.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    code = data.get("code") if isinstance(data.get("code"), str) else code_of_jsonrpc(shape.get("code"))
    status = data.get("httpStatus") if isinstance(data.get("httpStatus"), int) else http_status
    text = shape.get("message")
    return RemoteError(str(code), str(text) if text is not None else str(code), status, data)


@dataclass(slots=True)
class Outcome:
    """The result of one call of a batch: ``value`` or ``error``."""

    value: Any = None
    error: ExecutorClientError | None = None


def decode_envelope(envelope: Any, call: Call[Any], *, url: str, http_status: int) -> Outcome:
    if not isinstance(envelope, dict):
        return Outcome(error=_not_trpc(url, http_status, "a JSON value that is not a tRPC envelope"))
    if "error" in envelope:
        return Outcome(error=decode_error(envelope["error"], http_status=http_status))
    result = envelope.get("result")
    if not isinstance(result, dict):
        return Outcome(error=_not_trpc(url, http_status, "a JSON object without result or error"))
    try:
        data = superjson.deserialize(result["data"]) if "data" in result else None
    except ValueError as exc:
        return Outcome(error=TransportError(f"cannot decode the answer of {call.path}: {exc}", url))
    try:
        return Outcome(value=call.parse(data))
    except (ValueError, TypeError, KeyError) as exc:
        return Outcome(
            error=TransportError(f"unexpected answer to {call.path} from {url}: {exc}", url),
        )


def _not_trpc(url: str, status: int, what: str) -> TransportError:
    return TransportError(
        f"{url} answered HTTP {status} with {what}; is this a chaingraph server? (check the server URL)", url
    )


def describe_connect_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "refused" in lowered or "all connection attempts failed" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "unknown host"
    if "getaddrinfo failed" in lowered or "temporary failure in name resolution" in lowered:
        return "unknown host"
    return text


class HttpWire:
    """Queries, mutations and batches over one ``httpx.AsyncClient``."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        transport: httpx.AsyncBaseTransport | None,
        timeout: float,
        headers: Mapping[str, str] | None,
    ) -> None:
        self.base_url = base_url
        self.trpc_url = base_url + "/trpc"
        self.timeout = timeout
        all_headers = {"user-agent": "chaingraph-executor-client", **(headers or {})}
        if token:
            all_headers["authorization"] = f"Bearer {token}"
        self.http = httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(timeout), headers=all_headers, follow_redirects=False
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, call: Call[T]) -> T:
        outcome = (await self.send([call], batch=False))[0]
        if outcome.error is not None:
            raise outcome.error
        value: T = outcome.value
        return value

    async def send(self, calls: Sequence[Call[Any]], *, batch: bool = True) -> list[Outcome]:
        """One HTTP request for ``calls`` (all of the same kind)."""
        kind = calls[0].kind
        if any(c.kind != kind for c in calls):
            raise ValueError("one HTTP request carries either queries or mutations")
        url = self.trpc_url + "/" + ",".join(c.path for c in calls)
        params: dict[str, str] = {}
        if batch:
            params["batch"] = "1"
            payload: Any = {str(i): encode_input(c.input) for i, c in enumerate(calls)}
        else:
            payload = encode_input(calls[0].input)
        body = dumps(payload)
        try:
            if kind == "query":
                params["input"] = body
                response = await self.http.get(url, params=params)
            else:
                response = await self.http.post(
                    url, params=params, content=body.encode(), headers={"content-type": "application/json"}
                )
        except httpx.TimeoutException:
            raise TransportError(
                f"the chaingraph server at {self.base_url} did not answer within {self.timeout:g} s",
                self.base_url,
            ) from None
        except (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise TransportError(
                f"cannot reach the chaingraph server at {self.base_url} ({describe_connect_error(exc)}); "
                "is it running? Start one with `chaingraph serve` or pass the right server URL",
                self.base_url,
            ) from None
        except httpx.HTTPError as exc:
            raise TransportError(
                f"request to {self.base_url} failed: {exc or type(exc).__name__}", self.base_url
            ) from None
        try:
            decoded = response.json()
        except ValueError:
            kind_of = response.headers.get("content-type", "no content type")
            raise _not_trpc(url, response.status_code, f"a body that is not JSON ({kind_of})") from None
        if not batch:
            return [decode_envelope(decoded, calls[0], url=url, http_status=response.status_code)]
        if isinstance(decoded, list) and len(decoded) == len(calls):
            return [
                decode_envelope(env, c, url=url, http_status=response.status_code)
                for env, c in zip(decoded, calls, strict=True)
            ]
        # A single envelope for a batch applies to every call (a request-level error).
        return [decode_envelope(decoded, c, url=url, http_status=response.status_code) for c in calls]


# ------------------------------------------------------------------------------------ subscriptions
class _Retry(Exception):
    """The connection was lost (or the server asked us to move): reconnect and resume."""

    def __init__(self, reason: str, *, immediately: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.immediately = immediately


@dataclass(slots=True)
class ReconnectPolicy:
    """How a subscription reconnects: ``attempts`` in a row at most (reset when a connection is
    established), waiting 0 s, then ``base_delay_s`` doubling up to ``max_delay_s``."""

    attempts: int = 10
    base_delay_s: float = 0.25
    max_delay_s: float = 5.0

    def delay(self, attempt: int) -> float:
        if attempt <= 1:
            return 0.0
        delay = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 2))
        return float(delay * (0.8 + 0.4 * random.random()))


@dataclass(slots=True)
class Subscription:
    """One logical subscription across any number of connections: an async iterator of the
    values the procedure yields, keeping the id of the last tracked one for resuming."""

    wire: HttpWire
    path: str
    input: Any
    token: str | None
    mode: Literal["websocket", "sse"]
    policy: ReconnectPolicy
    last_event_id: str | None = None
    #: how many times the stream reconnected (and resumed)
    reconnects: int = 0
    open_timeout: float = 10.0
    _started_once: bool = field(default=False, repr=False)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._run()

    async def _run(self) -> AsyncIterator[Any]:
        attempt = 0
        source = self._websocket if self.mode == "websocket" else self._sse
        while True:
            values = source()
            try:
                async for value in values:
                    attempt = 0
                    yield value
                return
            except _Retry as retry:
                if not self._started_once:
                    raise TransportError(
                        f"cannot open the event stream at {self._where()}: {retry.reason}", self.wire.base_url
                    ) from None
                attempt = 0 if retry.immediately else attempt + 1
                if attempt > self.policy.attempts:
                    raise TransportError(
                        f"lost the event stream from {self._where()} and could not reconnect after "
                        f"{self.policy.attempts} attempts: {retry.reason}",
                        self.wire.base_url,
                    ) from None
                self.reconnects += 1
                await asyncio.sleep(self.policy.delay(attempt))
            finally:
                await values.aclose()

    def _where(self) -> str:
        return websocket_url(self.wire.base_url) if self.mode == "websocket" else self.wire.trpc_url

    # ------------------------------------------------------------------ WebSocket
    def _open(self) -> AbstractAsyncContextManager[ClientConnection]:
        url = websocket_url(self.wire.base_url)
        headers: dict[str, str] = {}
        if self.token:
            url += "?connectionParams=1"
            headers["authorization"] = f"Bearer {self.token}"
        return connect(
            url,
            additional_headers=headers,
            open_timeout=self.open_timeout,
            max_size=None,
            close_timeout=2,
            user_agent_header="chaingraph-executor-client",
        )

    async def _websocket(self) -> AsyncGenerator[Any]:
        try:
            async with self._open() as ws:
                if self.token:
                    await ws.send(dumps({"method": "connectionParams", "data": {"token": self.token}}))
                params: dict[str, Any] = {"path": self.path, "input": encode_input(self.input)}
                if self.last_event_id is not None:
                    params["lastEventId"] = self.last_event_id
                await ws.send(dumps({"id": _SUBSCRIPTION_ID, "method": "subscription", "params": params}))
                async for frame in ws:
                    if isinstance(frame, bytes):
                        frame = frame.decode()
                    if frame == "PING":
                        await ws.send("PONG")
                        continue
                    if frame == "PONG":
                        continue
                    done, values = self._on_frame(frame)
                    for value in values:
                        yield value
                    if done:
                        return
                raise _Retry(f"the server closed the connection ({ws.close_code or 'no close code'})")
        except InvalidStatus as exc:
            if exc.response.status_code >= 500:
                raise _Retry(f"HTTP {exc.response.status_code}") from None
            raise TransportError(
                f"cannot open the event stream at {self._where()}: HTTP {exc.response.status_code}; "
                "is this a chaingraph server? (check the server URL)",
                self.wire.base_url,
            ) from None
        except InvalidURI as exc:
            raise TransportError(f"invalid server URL: {exc}", self.wire.base_url) from None
        except ConnectionClosed as exc:
            raise _Retry(f"connection lost ({exc})") from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise _Retry(describe_connect_error(exc)) from None

    def _on_frame(self, frame: str) -> tuple[bool, list[Any]]:
        """``(finished, values)`` for one server frame (a message or an array of messages)."""
        try:
            parsed = json.loads(frame)
        except ValueError:
            raise TransportError(f"{self._where()} sent a frame that is not JSON: {frame[:80]!r}") from None
        messages = parsed if isinstance(parsed, list) else [parsed]
        values: list[Any] = []
        for message in messages:
            if not isinstance(message, dict):
                continue
            if message.get("method") == "reconnect":
                raise _Retry("the server asked clients to reconnect", immediately=True)
            if message.get("id") != _SUBSCRIPTION_ID:
                if message.get("id") is None and "error" in message:
                    raise decode_error(message["error"])
                continue
            if "error" in message:
                error = decode_error(message["error"])
                if error.retryable and self._started_once:
                    raise _Retry(str(error))
                raise error
            result = message.get("result")
            if not isinstance(result, dict):
                continue
            kind = result.get("type")
            if kind == "started":
                self._started_once = True
                continue
            if kind == "stopped":
                return True, values
            if "data" not in result:
                continue
            data = superjson.deserialize(result["data"])
            if "id" in result and isinstance(data, dict) and "data" in data:
                self.last_event_id = str(result["id"])
                data = data["data"]
            values.append(data)
        return False, values

    # ------------------------------------------------------------------ SSE
    async def _sse(self) -> AsyncGenerator[Any]:
        url = self.wire.trpc_url + "/" + self.path
        headers = {"accept": "text/event-stream", "cache-control": "no-cache"}
        if self.last_event_id is not None:
            headers["last-event-id"] = self.last_event_id
        params = {"input": dumps(encode_input(self.input))}
        timeout = httpx.Timeout(self.wire.timeout, read=None)
        try:
            async with self.wire.http.stream(
                "GET", url, params=params, headers=headers, timeout=timeout
            ) as response:
                content_type = response.headers.get("content-type", "")
                if not content_type.startswith("text/event-stream"):
                    body = await response.aread()
                    try:
                        envelope = json.loads(body)
                    except ValueError:
                        raise _not_trpc(url, response.status_code, "a body that is not JSON") from None
                    if isinstance(envelope, dict) and "error" in envelope:
                        raise decode_error(envelope["error"], http_status=response.status_code)
                    raise _not_trpc(url, response.status_code, "no event stream")
                async for event, data, event_id in _sse_events(response.aiter_lines()):
                    if event == "connected":
                        self._started_once = True
                    elif event == "return":
                        return
                    elif event == "serialized-error":
                        error = decode_error(json.loads(data))
                        if error.retryable:
                            raise _Retry(str(error))
                        raise error
                    elif event in (None, "message"):
                        value = superjson.deserialize(json.loads(data))
                        if event_id:
                            self.last_event_id = event_id
                        yield value
                raise _Retry("the server ended the event stream early")
        except httpx.TimeoutException:
            raise _Retry("timed out") from None
        except httpx.HTTPError as exc:
            raise _Retry(describe_connect_error(exc)) from None


async def _sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str | None, str, str | None]]:
    """``(event name, data, id)`` for each event of an SSE stream."""
    event: str | None = None
    data: list[str] = []
    event_id: str | None = None
    async for line in lines:
        if line == "":
            if data or event is not None:
                yield event, "\n".join(data), event_id
            event, data, event_id = None, [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
    if data or event is not None:
        yield event, "\n".join(data), event_id
