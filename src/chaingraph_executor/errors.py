"""The one error hierarchy of chaingraph-executor, free of any transport.

    ExecutorError                 (kind INTERNAL)
    ├── InvalidInput              (kind INVALID)      bad input from a caller
    │   └── InvalidFlow                               a flow document that cannot run
    ├── NotFound                  (kind NOT_FOUND)
    │   ├── FlowNotFound
    │   └── ExecutionNotFound
    ├── Forbidden                 (kind FORBIDDEN)    authenticated, but not allowed
    ├── Unauthenticated           (kind UNAUTHENTICATED)
    ├── InvalidState              (kind INVALID)      e.g. start on a running execution
    ├── Conflict                  (kind CONFLICT)
    ├── LimitExceeded             (kind TOO_LARGE)
    └── BackendUnavailable        (kind UNAVAILABLE)

The transport maps ``kind`` to a wire code in exactly one table (``api/errors.py``).
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar


class ErrorKind(enum.StrEnum):
    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    CONFLICT = "CONFLICT"
    TOO_LARGE = "TOO_LARGE"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class ExecutorError(Exception):
    """Unexpected chaingraph-executor error."""

    kind: ClassVar[ErrorKind] = ErrorKind.INTERNAL

    def __init__(self, message: str | None = None, **context: Any) -> None:
        super().__init__(message or (self.__doc__ or "").strip())
        self.context = context

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidInput(ExecutorError):
    """Invalid input."""

    kind = ErrorKind.INVALID

    def __init__(self, message: str | None = None, *, path: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.path = path


class InvalidFlow(InvalidInput):
    """Invalid flow."""

    def __init__(self, problems: list[str]) -> None:
        first = problems[0] if problems else "invalid flow"
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"invalid flow: {first}{more}")
        self.problems = problems


class NotFound(ExecutorError):
    """Not found."""

    kind = ErrorKind.NOT_FOUND


class FlowNotFound(NotFound):
    """Flow not found."""


class ExecutionNotFound(NotFound):
    """Execution not found."""


class Forbidden(ExecutorError):
    """You are not allowed to do this."""

    kind = ErrorKind.FORBIDDEN


class Unauthenticated(ExecutorError):
    """Authentication required: pass a token."""

    kind = ErrorKind.UNAUTHENTICATED


class InvalidState(ExecutorError):
    """The execution is not in a state that allows this."""

    kind = ErrorKind.INVALID


class Conflict(ExecutorError):
    """Conflicting change."""

    kind = ErrorKind.CONFLICT


class LimitExceeded(ExecutorError):
    """A limit was exceeded."""

    kind = ErrorKind.TOO_LARGE


class BackendUnavailable(ExecutorError):
    """A backend (database, queue) is unavailable."""

    kind = ErrorKind.UNAVAILABLE
