"""The client's exceptions.

ExecutorClientError
├── RemoteError        the server answered with a tRPC error (``code`` = NOT_FOUND, ...)
└── TransportError     the server could not be reached, or answered something that is not tRPC
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaingraph_executor.trpc.codes import CODES

__all__ = ["ExecutorClientError", "RemoteError", "TransportError", "code_of_jsonrpc"]

# The -32603 family is shared by five keys; the number alone maps to the first of them.
_BY_JSONRPC: dict[int, str] = {}
for _key, (_number, _status) in CODES.items():
    _BY_JSONRPC.setdefault(_number, _key)

#: codes worth retrying a subscription on (the server or a proxy in front of it had a problem)
RETRYABLE_CODES = frozenset(
    {"INTERNAL_SERVER_ERROR", "BAD_GATEWAY", "SERVICE_UNAVAILABLE", "GATEWAY_TIMEOUT"}
)


def code_of_jsonrpc(number: Any) -> str:
    """The tRPC key of a JSON-RPC error number (``INTERNAL_SERVER_ERROR`` when unknown)."""
    if isinstance(number, int) and not isinstance(number, bool):
        return _BY_JSONRPC.get(number, "INTERNAL_SERVER_ERROR")
    return "INTERNAL_SERVER_ERROR"


class ExecutorClientError(Exception):
    """Base class of every error raised by :mod:`chaingraph_executor.client`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RemoteError(ExecutorClientError):
    """The server refused or failed a call.

    ``code`` is the tRPC error key (``BAD_REQUEST``, ``UNAUTHORIZED``, ``FORBIDDEN``,
    ``NOT_FOUND``, ``CONFLICT``, ``PAYLOAD_TOO_LARGE``, ``TOO_MANY_REQUESTS``,
    ``SERVICE_UNAVAILABLE``, ``INTERNAL_SERVER_ERROR``, ...), ``http_status`` its HTTP status,
    ``data`` the error shape's ``data`` object (``path``, ``problems`` of an invalid flow, ...).
    """

    def __init__(
        self,
        code: str,
        message: str,
        http_status: int | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status if http_status is not None else CODES.get(code, (0, 500))[1]
        self.data: dict[str, Any] = dict(data or {})

    @property
    def path(self) -> str | None:
        """The procedure that failed (``getFlow``, ...), when the server said."""
        path = self.data.get("path")
        return path if isinstance(path, str) else None

    @property
    def problems(self) -> list[str]:
        """Every problem of an invalid flow (``uploadFlow``); empty for other errors."""
        problems = self.data.get("problems")
        return [str(p) for p in problems] if isinstance(problems, list) else []

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"RemoteError({self.code!r}, {self.message!r}, http_status={self.http_status})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.message, self.http_status, self.data))


class TransportError(ExecutorClientError):
    """The server could not be reached (refused, timed out, connection lost for good), or it
    answered with something that is not a tRPC response (wrong URL, a proxy's error page)."""

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.url))
