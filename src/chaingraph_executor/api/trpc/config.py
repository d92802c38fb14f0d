"""Limits and keep-alive settings of the tRPC transport (ADR 0005).

Every limit answers with a proper tRPC error and leaves the server (and, where possible, the
connection) healthy:

* ``max_body_bytes`` — HTTP request body; larger → 413 PAYLOAD_TOO_LARGE (request-level error);
* ``max_batch_size`` — calls in one HTTP batch or one WebSocket array frame; more → BAD_REQUEST
  ("Batch call exceeds maximum size"), like ``@trpc/server``'s ``maxBatchSize``;
* ``max_ws_message_bytes`` — one WebSocket frame; larger → ``{"id":null,"error":PAYLOAD_TOO_LARGE}``
  and the socket is closed with 1009 (message too big): the frame was not parsed, so the request
  it carried cannot be answered, and closing makes the client fail its pending calls at once
  (and resubscribe) instead of waiting forever;
* ``max_ws_subscriptions`` — concurrent subscriptions on one WebSocket; more → that request fails
  with TOO_MANY_REQUESTS, the others continue;
* ``max_ws_pending_calls`` — concurrent queries/mutations on one WebSocket; more →
  TOO_MANY_REQUESTS for the extra call;
* ``ws_connection_params_timeout_ms`` — how long a ``?connectionParams=1`` socket may take to send
  its first frame before it is closed (1008).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KeepAlive", "Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = 1024 * 1024
    max_batch_size: int = 64
    max_ws_message_bytes: int = 1024 * 1024
    max_ws_subscriptions: int = 128
    max_ws_pending_calls: int = 256
    ws_connection_params_timeout_ms: int = 10_000


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """Optional keep-alives (all off by default, like ``@trpc/server``).

    ``ws_ping_ms``: send a text ``PING`` after that much silence from the client; close (1011) when
    nothing arrives within ``ws_pong_wait_ms``. ``sse_ping_ms``: ``event: ping`` during silence.
    ``sse_reconnect_after_inactivity_ms``: sent to the client in ``connected`` (it must be larger
    than ``sse_ping_ms``). ``jsonl_ping_ms``: a space between JSONL lines during silence.
    """

    ws_ping_ms: int | None = None
    ws_pong_wait_ms: int = 5_000
    sse_ping_ms: int | None = None
    sse_reconnect_after_inactivity_ms: int | None = None
    jsonl_ping_ms: int | None = None

    def __post_init__(self) -> None:
        if (
            self.sse_ping_ms
            and self.sse_reconnect_after_inactivity_ms
            and self.sse_ping_ms > self.sse_reconnect_after_inactivity_ms
        ):
            raise ValueError("sse_ping_ms must be smaller than sse_reconnect_after_inactivity_ms")
