"""``RequestInfo``: what a transport tells the app's ``create_context`` about a request.

Transport-neutral (no ASGI/Starlette types): HTTP, SSE and WebSocket fill the same fields
(PROTOCOL.md §2.2 item 7 and §4.1 for ``connection_params``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["RequestInfo", "TransportKind"]

TransportKind = Literal["http", "ws", "sse"]


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """One HTTP request, SSE stream or WebSocket connection, as seen by context creation.

    ``headers`` is case-insensitive when the transport provides it so (Starlette does);
    ``connection_params`` is the WebSocket ``connectionParams`` frame's data or the HTTP/SSE
    ``?connectionParams=`` object (``None`` when absent). ``paths`` are the procedure paths of
    an HTTP request (empty for a WebSocket connection, whose context serves every request).
    """

    transport: TransportKind
    headers: Mapping[str, str]
    cookies: Mapping[str, str] = field(default_factory=dict)
    query_params: Mapping[str, str] = field(default_factory=dict)
    connection_params: Mapping[str, str] | None = None
    client: tuple[str, int] | None = None
    paths: tuple[str, ...] = ()
