"""tRPC error codes and the ``TRPCError`` exception (PROTOCOL.md §1.3).

Each tRPC key (``data.code`` on the wire) has a JSON-RPC number (the shape's ``code``) and an
HTTP status. Five keys share -32603, so the key always travels next to the number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

__all__ = [
    "CODES",
    "RETRYABLE_JSONRPC_CODES",
    "TRPCError",
    "TRPCErrorCode",
    "http_status",
    "jsonrpc_code",
]

TRPCErrorCode = Literal[
    "PARSE_ERROR",
    "BAD_REQUEST",
    "UNAUTHORIZED",
    "PAYMENT_REQUIRED",
    "FORBIDDEN",
    "NOT_FOUND",
    "METHOD_NOT_SUPPORTED",
    "TIMEOUT",
    "CONFLICT",
    "PRECONDITION_FAILED",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "UNPROCESSABLE_CONTENT",
    "PRECONDITION_REQUIRED",
    "TOO_MANY_REQUESTS",
    "CLIENT_CLOSED_REQUEST",
    "INTERNAL_SERVER_ERROR",
    "NOT_IMPLEMENTED",
    "BAD_GATEWAY",
    "SERVICE_UNAVAILABLE",
    "GATEWAY_TIMEOUT",
]

#: key → (JSON-RPC code, HTTP status)
CODES: Final[Mapping[str, tuple[int, int]]] = {
    "PARSE_ERROR": (-32700, 400),
    "BAD_REQUEST": (-32600, 400),
    "UNAUTHORIZED": (-32001, 401),
    "PAYMENT_REQUIRED": (-32002, 402),
    "FORBIDDEN": (-32003, 403),
    "NOT_FOUND": (-32004, 404),
    "METHOD_NOT_SUPPORTED": (-32005, 405),
    "TIMEOUT": (-32008, 408),
    "CONFLICT": (-32009, 409),
    "PRECONDITION_FAILED": (-32012, 412),
    "PAYLOAD_TOO_LARGE": (-32013, 413),
    "UNSUPPORTED_MEDIA_TYPE": (-32015, 415),
    "UNPROCESSABLE_CONTENT": (-32022, 422),
    "PRECONDITION_REQUIRED": (-32028, 428),
    "TOO_MANY_REQUESTS": (-32029, 429),
    "CLIENT_CLOSED_REQUEST": (-32099, 499),
    "INTERNAL_SERVER_ERROR": (-32603, 500),
    "NOT_IMPLEMENTED": (-32603, 501),
    "BAD_GATEWAY": (-32603, 502),
    "SERVICE_UNAVAILABLE": (-32603, 503),
    "GATEWAY_TIMEOUT": (-32603, 504),
}

#: JSON-RPC codes the httpSubscriptionLink retries (reconnects with Last-Event-ID)
RETRYABLE_JSONRPC_CODES: Final = frozenset({-32603})


def jsonrpc_code(key: str) -> int:
    return CODES[key][0]


def http_status(key: str) -> int:
    return CODES[key][1]


class TRPCError(Exception):
    """An error with a tRPC code; raised by procedures or by the protocol layer.

    ``data_extra`` is merged into the error shape's ``data`` (e.g. ``zodError``); ``cause`` is
    kept as ``__cause__`` (its traceback is the ``stack`` in dev mode).
    """

    def __init__(
        self,
        code: TRPCErrorCode | str,
        message: str | None = None,
        *,
        data_extra: Mapping[str, Any] | None = None,
        cause: BaseException | None = None,
    ) -> None:
        if code not in CODES:
            raise ValueError(f"unknown tRPC error code {code!r}")
        self.code: str = code
        self.message: str = message if message is not None else (str(cause) if cause is not None else code)
        self.data_extra: dict[str, Any] = dict(data_extra) if data_extra else {}
        super().__init__(self.message)
        if cause is not None:
            self.__cause__ = cause

    @property
    def jsonrpc_code(self) -> int:
        return CODES[self.code][0]

    @property
    def http_status(self) -> int:
        return CODES[self.code][1]

    def __repr__(self) -> str:
        return f"TRPCError({self.code!r}, {self.message!r})"
