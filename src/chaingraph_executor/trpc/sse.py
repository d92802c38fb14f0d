"""Server-Sent Events producer for ``httpSubscriptionLink`` (PROTOCOL.md §3.2).

``sse_stream`` turns a subscription's async iterator into SSE text:

* ``event: connected`` first, its data the plain JSON client options
  (``{}`` or ``{"reconnectAfterInactivityMs": N}``) — not transformed;
* each value as a message event with ``data: serialize(value)``; a ``Tracked`` event also gets
  ``id: <id>``; an untracked event after a tracked one (or after a resume with Last-Event-ID)
  gets an empty ``id:`` line followed by ``event: restore-id`` carrying the previous id;
* optional ``event: ping`` after ``ping_ms`` without events;
* ``event: serialized-error`` with ``serialize(shape)`` when the subscription fails (also when it
  fails before starting) — the stream ends there;
* ``event: return`` when the iterator is exhausted (without it EventSource reconnects forever).

Closing the generator (client gone) closes the subscription's iterator.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from typing import Any, Final

from chaingraph_executor.trpc.router import StreamReturn, Tracked, aclose_quietly
from chaingraph_executor.trpc.transformers import dumps

__all__ = ["SSE_HEADERS", "sse_event", "sse_stream"]

SSE_HEADERS: Final[Mapping[str, str]] = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache, no-transform",
    "x-accel-buffering": "no",
}

_BAD_ID: Final = ("\0", "\n", "\r")


def sse_event(*, data: str = "", event: str | None = None, id: str | None = None) -> str:
    """One SSE event block (fields, then a blank line). ``data`` must be a single line."""
    parts = []
    if event is not None:
        parts.append(f"event: {event}\n")
    parts.append(f"data: {data}\n")
    if id is not None:
        parts.append(f"id: {id}\n")
    parts.append("\n")
    return "".join(parts)


RETURN_EVENT: Final = sse_event(event="return")
PING_EVENT: Final = sse_event(event="ping")


async def sse_stream(
    source: AsyncIterable[Any] | BaseException,
    *,
    serialize: Callable[[Any], Any],
    format_error: Callable[[BaseException], dict[str, Any]],
    last_event_id: str | None = None,
    ping_ms: int | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> AsyncIterator[str]:
    """Yield SSE event blocks for a subscription (``source`` may be the error that stopped it early)."""
    yield sse_event(event="connected", data=dumps(dict(client_options or {})))
    if isinstance(source, BaseException):
        yield sse_event(event="serialized-error", data=dumps(serialize(format_error(source))))
        return
    last_id = last_event_id if last_event_id and not any(c in last_event_id for c in _BAD_ID) else None
    iterator: AsyncIterator[Any] = aiter(source)
    pending: asyncio.Future[Any] | None = None
    timeout = ping_ms / 1000 if ping_ms else None
    try:
        while True:
            if timeout is None:
                try:
                    value = await anext(iterator)
                except StopAsyncIteration:
                    break
            else:
                if pending is None:
                    pending = asyncio.ensure_future(anext(iterator))
                done, _ = await asyncio.wait({pending}, timeout=timeout)
                if not done:
                    yield PING_EVENT
                    continue
                step, pending = pending, None
                try:
                    value = step.result()
                except StopAsyncIteration:
                    break
            if type(value) is StreamReturn:
                break
            if type(value) is Tracked:
                last_id = value.id
                yield sse_event(data=dumps(serialize(value.data)), id=value.id)
            elif last_id is None:
                yield sse_event(data=dumps(serialize(value)))
            else:
                yield sse_event(data=dumps(serialize(value)), id="") + sse_event(
                    event="restore-id", id=last_id
                )
        yield RETURN_EVENT
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - the subscription failed: tell the client
        yield sse_event(event="serialized-error", data=dumps(serialize(format_error(exc))))
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.wait({pending})
            if not pending.cancelled():
                pending.exception()  # retrieved: no "never retrieved" warning
        await aclose_quietly(iterator)
