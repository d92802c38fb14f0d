"""Data transformers: SuperJSON or none (PROTOCOL.md §5).

A transformer turns an output value into what goes on the wire (``serialize``) and a received
input payload back into a Python value (``deserialize``). Where it is applied per transport is
the transports' business (§5.1).

Without a transformer the server speaks ``JSON.stringify`` semantics: ``UNDEFINED`` object
members disappear (array items become ``null``), datetimes become ISO strings, NaN/±inf become
``null``; an ``UNDEFINED`` root returns ``UNDEFINED`` so the envelope can omit the member.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final, Literal, Protocol

from chaingraph_executor.domain.events import ErrorInfo
from chaingraph_executor.trpc import superjson
from chaingraph_executor.trpc.superjson import UNDEFINED, MapEntries, RegExpValue, SetItems, TypedArray

__all__ = [
    "PlainTransformer",
    "SuperJSONTransformer",
    "Transformer",
    "TransformerName",
    "dumps",
    "get_transformer",
    "to_plain_json",
]

TransformerName = Literal["superjson", "none"]


class Transformer(Protocol):
    @property
    def name(self) -> str: ...

    def serialize(self, value: Any) -> Any: ...

    def deserialize(self, payload: Any) -> Any: ...


class SuperJSONTransformer:
    name: Final[str] = "superjson"

    def __init__(self, codec: superjson.SuperJSON | None = None) -> None:
        self.codec = codec or superjson.default

    def serialize(self, value: Any) -> Any:
        return self.codec.serialize(value)

    def deserialize(self, payload: Any) -> Any:
        return self.codec.deserialize(payload)


class PlainTransformer:
    name: Final[str] = "none"

    def serialize(self, value: Any) -> Any:
        return to_plain_json(value)

    def deserialize(self, payload: Any) -> Any:
        return payload


SUPERJSON: Final = SuperJSONTransformer()
PLAIN: Final = PlainTransformer()


def get_transformer(choice: TransformerName | Transformer | None) -> Transformer:
    if choice is None or choice == "none":
        return PLAIN
    if choice == "superjson":
        return SUPERJSON
    if isinstance(choice, str):
        raise ValueError(f"unknown transformer {choice!r}")
    return choice


def to_plain_json(value: Any) -> Any:
    """``JSON.parse(JSON.stringify(value))`` of a Python value (root ``UNDEFINED`` stays)."""
    t = type(value)
    if t is str or t is bool or t is int or value is None:
        return value
    if t is dict:
        out: dict[Any, Any] | None = None
        for k, x in value.items():
            jx = to_plain_json(x)
            if jx is not x or x is UNDEFINED:
                if out is None:
                    out = dict(value)
                if jx is UNDEFINED:
                    del out[k]
                else:
                    out[k] = jx
        return value if out is None else out
    if t is list or t is tuple:
        items: list[Any] | None = None
        for i, x in enumerate(value):
            jx = to_plain_json(x)
            if jx is not x:
                if items is None:
                    items = list(value)
                items[i] = None if jx is UNDEFINED else jx
        return value if items is None else items
    if t is float:
        return value if math.isfinite(value) else None
    if value is UNDEFINED:
        return UNDEFINED
    if isinstance(value, datetime):
        return superjson.format_date(value)
    if isinstance(value, enum.Enum):
        return to_plain_json(value.value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return to_plain_json(float(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, MapEntries):
        return {}
    if isinstance(value, Mapping):
        return to_plain_json(dict(value))
    if isinstance(value, set | frozenset | SetItems | list | tuple):
        return to_plain_json(list(value))
    if isinstance(value, ErrorInfo):
        return value.to_json()
    if isinstance(value, BaseException):
        return {"name": type(value).__name__, "message": str(value)}
    if isinstance(value, RegExpValue):
        return {}
    if isinstance(value, bytes | bytearray | memoryview):
        return {str(i): b for i, b in enumerate(bytes(value))}
    if isinstance(value, TypedArray):
        return {str(i): x for i, x in enumerate(value.values)}
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return to_plain_json(model_dump(mode="python", by_alias=True))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain_json({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    raise TypeError(f"cannot serialize a value of type {t.__module__}.{t.__qualname__}")


_encoder: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON as ``JSON.stringify`` writes it (UTF-8, no spaces)."""
    return _encoder.encode(value)
