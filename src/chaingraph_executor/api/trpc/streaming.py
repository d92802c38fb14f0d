"""ASGI response helpers: a plain body, and a streamed body that stops when the client leaves.

``stream_response`` sends each chunk as soon as it is produced (no buffering: SSE and JSONL need
every event/line flushed) and watches ``receive()`` for ``http.disconnect`` at the same time, so
an idle subscription is cancelled when its client goes away (PROTOCOL.md §3.2 "stop the
generator when the client disconnects"), not only at the next write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from starlette.types import Receive, Send

from chaingraph_executor.trpc.router import aclose_quietly

__all__ = ["send_response", "stream_response"]

Headers = Iterable[tuple[str, str]]


def _raw(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def send_response(send: Send, status: int, body: bytes, headers: Headers) -> None:
    raw = _raw(headers)
    if body or status not in (204, 304):
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _pump(send: Send, body: AsyncIterator[str]) -> None:
    async for chunk in body:
        await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def stream_response(
    receive: Receive,
    send: Send,
    status: int,
    headers: Headers,
    body: AsyncIterator[str],
    *,
    stop: asyncio.Event | None = None,
) -> bool:
    """Stream ``body``; return True when it was sent completely, False when it was cut short.

    It is cut short when the client leaves (``http.disconnect`` or a failed write) or when
    ``stop`` is set (server shutdown: the response then ends cleanly without the rest, which
    an EventSource treats as a network drop). The body generator is always closed before this
    returns, which closes the subscription or iterators behind it.
    """
    try:
        await send({"type": "http.response.start", "status": status, "headers": _raw(headers)})
        pump = asyncio.ensure_future(_pump(send, body))
        watchers: list[asyncio.Future[Any]] = [asyncio.ensure_future(_wait_for_disconnect(receive))]
        if stop is not None:
            watchers.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait({pump, *watchers}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, *watchers):
                task.cancel()
            await asyncio.wait({pump, *watchers})
        if pump.cancelled():
            if stop is not None and stop.is_set():
                await _end(send)
            return False
        error = pump.exception()
        if error is None:
            return True
        if isinstance(error, OSError):  # the client went away mid-write
            return False
        raise error
    finally:
        await aclose_quietly(body)


async def _end(send: Send) -> None:
    try:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:
        return
