"""A transport-agnostic tRPC procedure router (PROTOCOL.md §0, §1.2, §3.1, §4.4).

Procedures are registered by dotted path::

    router = Router()

    @router.query("post.byId", input=PostById)
    async def post_by_id(ctx: Ctx, input: PostById) -> dict[str, Any]: ...

    @router.subscription("onPost", input=OnPostInput)
    async def on_post(ctx: Ctx, input: OnPostInput) -> AsyncIterator[Any]:
        yield tracked("1", {...})

A handler is ``handler(ctx, input)``: a coroutine function (or a plain function) for queries
and mutations, an async generator function (or a function returning an async iterable) for
subscriptions; a query may also return an async iterable or a dict with awaitable members
(streamed by the JSONL transport only). ``input`` is the validated value when an input type was
given (any pydantic-validatable type), else the decoded raw value (``UNDEFINED`` when absent).

Errors: ``TRPCError`` passes through; other exceptions go through ``error_mapper`` and
otherwise become INTERNAL_SERVER_ERROR with the exception's message. Input validation failures
are BAD_REQUEST with a message naming the field path
(``Invalid input: limit: Input should be less than or equal to 100``) and, unless disabled,
``data.zodError = {"formErrors": [...], "fieldErrors": {"limit": [...]}}`` (zod's ``flatten()``
shape, which frontends written against zod read).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from chaingraph_executor.trpc.codes import TRPCError
from chaingraph_executor.trpc.envelopes import PROCEDURE_TYPES, ErrorFormatter, ProcedureType, error_shape
from chaingraph_executor.trpc.superjson import UNDEFINED
from chaingraph_executor.trpc.transformers import Transformer, TransformerName, get_transformer

__all__ = [
    "ErrorMapper",
    "Handler",
    "Procedure",
    "Router",
    "StreamReturn",
    "Tracked",
    "aclose_quietly",
    "discard_stream",
    "is_data_stream",
    "strip_undefined",
    "tracked",
    "validation_error",
]

T = TypeVar("T")
H = TypeVar("H", bound=Callable[..., Any])

#: ``handler(ctx, input)``
Handler = Callable[[Any, Any], Any]
#: maps an application exception to a ``TRPCError`` (``None``: not mine → INTERNAL_SERVER_ERROR)
ErrorMapper = Callable[[Exception], "TRPCError | None"]

_BAD_ID_CHARS: Final = ("\0", "\n", "\r")


@dataclass(frozen=True, slots=True)
class Tracked(Generic[T]):
    """A subscription event with an id (``tracked(id, data)``); resumable by ``lastEventId``."""

    id: str
    data: T


@dataclass(frozen=True, slots=True)
class StreamReturn(Generic[T]):
    """Yielded last by a streaming query: its return value (``return`` of a JS async generator,
    which Python async generators cannot express). Iteration stops there."""

    value: T


def tracked(id: str, data: T) -> Tracked[T]:
    """Mark a subscription event as tracked. The id must be a non-empty string without CR/LF/NUL."""
    if not isinstance(id, str) or not id:
        raise ValueError("tracked() id must be a non-empty string")
    if any(c in id for c in _BAD_ID_CHARS):
        raise ValueError("tracked() id must not contain CR, LF or NUL")
    return Tracked(id, data)


def strip_undefined(value: Any) -> Any:
    """What a JS validator sees: ``UNDEFINED`` object members removed, array items → ``None``,
    an ``UNDEFINED`` root → ``None``. Copies only containers that change."""
    if value is UNDEFINED:
        return None
    return _strip(value)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        for k, x in value.items():
            if x is UNDEFINED:
                if out is None:
                    out = dict(value)
                del out[k]
                continue
            if isinstance(x, dict | list):
                sx = _strip(x)
                if sx is not x:
                    if out is None:
                        out = dict(value)
                    out[k] = sx
        return value if out is None else out
    if isinstance(value, list):
        items: list[Any] | None = None
        for i, x in enumerate(value):
            sx = None if x is UNDEFINED else (_strip(x) if isinstance(x, dict | list) else x)
            if sx is not x:
                if items is None:
                    items = list(value)
                items[i] = sx
        return value if items is None else items
    return value


def _loc_text(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def validation_error(exc: ValidationError, *, zod_error: bool = True) -> TRPCError:
    """BAD_REQUEST for failed input validation: a readable message plus ``data.zodError``."""
    parts: list[str] = []
    form_errors: list[str] = []
    field_errors: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = tuple(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        if loc:
            parts.append(f"{_loc_text(loc)}: {msg}")
            rest = _loc_text(loc[1:])
            field_errors.setdefault(str(loc[0]), []).append(f"{rest}: {msg}" if rest else msg)
        else:
            parts.append(msg)
            form_errors.append(msg)
    message = "Invalid input: " + "; ".join(parts) if parts else "Invalid input"
    extra = {"zodError": {"formErrors": form_errors, "fieldErrors": field_errors}} if zod_error else None
    return TRPCError("BAD_REQUEST", message, data_extra=extra, cause=exc)


def is_data_stream(value: Any) -> bool:
    """An async iterable, or a dict with an awaitable / async-iterable member (PROTOCOL §2.3)."""
    if isinstance(value, AsyncIterable):
        return True
    if isinstance(value, dict):
        return any(inspect.isawaitable(v) or isinstance(v, AsyncIterable) for v in value.values())
    return False


async def discard_stream(value: Any) -> None:
    """Release the awaitables / async iterators of a stream-like value that will not be sent."""
    members = value.values() if isinstance(value, dict) else (value,)
    for member in members:
        if inspect.iscoroutine(member):
            member.close()
        elif isinstance(member, asyncio.Future):
            member.cancel()
        elif isinstance(member, AsyncIterable):
            await aclose_quietly(member)


@dataclass(slots=True)
class Procedure:
    path: str
    type: ProcedureType
    handler: Handler
    input_type: Any = None
    zod_error: bool = True
    _adapter: TypeAdapter[Any] | None = field(default=None, repr=False)
    _is_asyncgen: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.input_type is not None and self._adapter is None:
            self._adapter = TypeAdapter(self.input_type)
        self._is_asyncgen = inspect.isasyncgenfunction(self.handler)

    def parse_input(self, raw: Any) -> Any:
        """Validate a decoded input; BAD_REQUEST (with zodError) when it does not fit."""
        if self._adapter is None:
            return raw
        try:
            return self._adapter.validate_python(strip_undefined(raw))
        except ValidationError as exc:
            raise validation_error(exc, zod_error=self.zod_error) from None

    async def call(self, ctx: Any, raw_input: Any) -> Any:
        """Validate and run. Subscriptions return their async iterator without iterating it."""
        value = self.parse_input(raw_input)
        if self._is_asyncgen:
            return self.handler(ctx, value)
        result = self.handler(ctx, value)
        if inspect.isawaitable(result):
            result = await result
        if self.type == "subscription" and not isinstance(result, AsyncIterable):
            raise TRPCError(
                "INTERNAL_SERVER_ERROR",
                f"Subscription {self.path} did not return an observable or a AsyncGenerator",
            )
        return result


def _check_path(path: str) -> str:
    if not path or "," in path or path.startswith(".") or path.endswith(".") or ".." in path:
        raise ValueError(f"invalid procedure path {path!r}")
    return path


class Router:
    """Procedures by dotted path, plus how errors and data travel for this router."""

    def __init__(
        self,
        *,
        transformer: TransformerName | Transformer = "superjson",
        error_mapper: ErrorMapper | None = None,
        error_formatter: ErrorFormatter | None = None,
        zod_error: bool = True,
    ) -> None:
        self.transformer: Transformer = get_transformer(transformer)
        self.error_mapper = error_mapper
        self.error_formatter = error_formatter
        self.zod_error = zod_error
        self._procedures: dict[str, Procedure] = {}

    # ------------------------------------------------------------------ registration
    def add(self, path: str, type_: ProcedureType, handler: Handler, *, input: Any = None) -> Procedure:
        if type_ not in PROCEDURE_TYPES:
            raise ValueError(f"unknown procedure type {type_!r}")
        if _check_path(path) in self._procedures:
            raise ValueError(f"procedure {path!r} is already registered")
        proc = Procedure(path, type_, handler, input, zod_error=self.zod_error)
        self._procedures[path] = proc
        return proc

    def _decorator(self, type_: ProcedureType, path: str, input: Any) -> Callable[[H], H]:
        def register(handler: H) -> H:
            self.add(path, type_, handler, input=input)
            return handler

        return register

    def query(self, path: str, *, input: Any = None) -> Callable[[H], H]:
        return self._decorator("query", path, input)

    def mutation(self, path: str, *, input: Any = None) -> Callable[[H], H]:
        return self._decorator("mutation", path, input)

    def subscription(self, path: str, *, input: Any = None) -> Callable[[H], H]:
        return self._decorator("subscription", path, input)

    def include(self, other: Router, *, prefix: str = "") -> None:
        """Copy ``other``'s procedures in, under ``prefix.`` (nested routers)."""
        for proc in other:
            path = f"{prefix}.{proc.path}" if prefix else proc.path
            self.add(path, proc.type, proc.handler, input=proc.input_type)

    # ------------------------------------------------------------------ lookup
    def get(self, path: str) -> Procedure | None:
        return self._procedures.get(path)

    def __iter__(self) -> Iterator[Procedure]:
        return iter(self._procedures.values())

    def __len__(self) -> int:
        return len(self._procedures)

    def __contains__(self, path: object) -> bool:
        return path in self._procedures

    # ------------------------------------------------------------------ errors
    def to_trpc_error(self, exc: BaseException) -> TRPCError:
        """Any exception → ``TRPCError`` (mapper first, then INTERNAL_SERVER_ERROR)."""
        if isinstance(exc, TRPCError):
            return exc
        if self.error_mapper is not None and isinstance(exc, Exception):
            mapped = self.error_mapper(exc)
            if mapped is not None:
                if mapped.__cause__ is None:
                    mapped.__cause__ = exc
                return mapped
        message = str(exc) or type(exc).__name__
        return TRPCError("INTERNAL_SERVER_ERROR", message, cause=exc)

    def error_shape(
        self, error: BaseException, *, path: str | None = None, dev: bool = False
    ) -> dict[str, Any]:
        """Untransformed error shape for any exception, through the app's formatter."""
        return error_shape(self.to_trpc_error(error), path=path, dev=dev, formatter=self.error_formatter)


async def aclose_quietly(iterator: AsyncIterator[Any] | AsyncIterable[Any]) -> None:
    """Finish an async iterator (``aclose``) ignoring what its cleanup raises."""
    aclose: Callable[[], Awaitable[Any]] | None = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:  # noqa: BLE001 - cleanup of an abandoned generator must not fail the caller
        return
