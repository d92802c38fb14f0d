"""SuperJSON codec, both directions (PROTOCOL.md §5.2; superjson 2.2.6 wire format).

``serialize(value)`` turns a Python value into the ``{"json": ..., "meta"?: {...}}`` envelope the
official ``superjson`` package produces, and ``deserialize(envelope)`` does the inverse.

Python ↔ JavaScript mapping:

=========================================  ==========================================
Python                                     JavaScript (annotation in ``meta.values``)
=========================================  ==========================================
``UNDEFINED``                              ``undefined`` (``"undefined"``)
aware ``datetime`` (naive = UTC)           ``Date`` (``"Date"``), ``YYYY-MM-DDTHH:MM:SS.mmmZ``
``BigInt`` / ``int`` outside ±(2**53-1)    ``bigint`` (``"bigint"``); decoded as ``BigInt``
``float`` NaN / ±inf / -0.0                ``number`` (``"number"``)
``SuperMap`` (dict) / ``MapEntries``       ``Map`` (``"map"``)
``set`` / ``frozenset`` / ``SetItems``     ``Set`` (``"set"``)
``RegExpValue``                            ``RegExp`` (``"regexp"``)
``ErrorInfo`` / ``BaseException``          ``Error`` (``"Error"``); decoded as ``ErrorInfo``
``URL`` (a ``str``)                        ``URL`` (``"URL"``)
``bytes`` / ``TypedArray``                 typed arrays (``["typed-array", name]``)
registered types                           ``["custom", name]`` / ``["class", name]``
=========================================  ==========================================

Plain ``dict``/``list``/``tuple``/``str``/``bool``/``None`` and safe-range numbers travel as
they are. Pydantic models (``model_dump``) and dataclasses are sent as plain objects, enums
as their value, ``date`` as ``YYYY-MM-DD``.

Encoding is one walk that builds the JSON form and the annotations together and copies a
container only when one of its children changes. Paths are escaped like superjson 2.2.3+
(``\\.`` for a dot, ``\\\\`` for a backslash); ``meta.v = 1`` is emitted only when a key that
needs annotating contains a backslash (the only case where the legacy and v1 forms differ).
Decoding accepts both the legacy (no ``v``) and the v1 path forms and ignores
``meta.referentialEqualities`` (values are duplicated in ``json`` anyway).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, Literal

from chaingraph_executor.domain.events import ErrorInfo

__all__ = [
    "UNDEFINED",
    "URL",
    "BigInt",
    "MapEntries",
    "RegExpValue",
    "SetItems",
    "SuperJSON",
    "SuperJSONError",
    "SuperMap",
    "Symbol",
    "TypedArray",
    "Undefined",
    "default",
    "deserialize",
    "format_date",
    "register",
    "serialize",
]

MAX_SAFE_INTEGER: Final = 2**53 - 1


class SuperJSONError(ValueError):
    """A SuperJSON envelope could not be decoded (or a value could not be encoded)."""


class Undefined:
    """JavaScript ``undefined``: distinct from ``None`` (``null``). Use the ``UNDEFINED`` singleton."""

    _instance: Undefined | None = None
    __slots__ = ()

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = Undefined()


class BigInt(int):
    """An ``int`` that travels as a JavaScript ``bigint`` whatever its size."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"BigInt({int(self)})"


class SuperMap(dict[Any, Any]):
    """A ``dict`` that travels as a JavaScript ``Map`` (keys keep their types)."""

    __slots__ = ()


class MapEntries(list[tuple[Any, Any]]):
    """A JavaScript ``Map`` whose keys are not hashable in Python: a list of ``(key, value)`` pairs."""

    __slots__ = ()


class SetItems(list[Any]):
    """A JavaScript ``Set`` whose items are not hashable in Python."""

    __slots__ = ()


class URL(str):
    """A ``str`` that travels as a JavaScript ``URL``."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class RegExpValue:
    """A JavaScript ``RegExp`` (``/source/flags``)."""

    source: str
    flags: str = ""

    def __str__(self) -> str:
        return f"/{self.source}/{self.flags}"


@dataclass(frozen=True, slots=True)
class TypedArray:
    """A JavaScript typed array other than ``Uint8Array`` (which decodes to ``bytes``)."""

    kind: str
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Symbol:
    """A registered JavaScript symbol, identified by its description."""

    description: str


TYPED_ARRAY_KINDS: Final = frozenset(
    {
        "Int8Array",
        "Uint8Array",
        "Uint8ClampedArray",
        "Int16Array",
        "Uint16Array",
        "Int32Array",
        "Uint32Array",
        "Float32Array",
        "Float64Array",
        "BigInt64Array",
        "BigUint64Array",
    }
)

# A tree (annotation) is ``[type]`` or ``[type, {relative path: tree}]``; ``type`` is a string or
# a ``[kind, name]`` list. Leaf trees are shared constants: never mutated.
_T_UNDEFINED: Final = ["undefined"]
_T_DATE: Final = ["Date"]
_T_BIGINT: Final = ["bigint"]
_T_NUMBER: Final = ["number"]
_T_ERROR: Final = ["Error"]
_T_REGEXP: Final = ["regexp"]
_T_URL: Final = ["URL"]
_T_UINT8: Final = [["typed-array", "Uint8Array"]]

_INF: Final = math.inf


def format_date(value: datetime) -> str:
    """``Date.prototype.toISOString()`` of an aware (or naive = UTC) datetime: ms precision, ``Z``."""
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
        f"{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


def _parse_date(text: Any) -> datetime:
    if not isinstance(text, str):
        raise SuperJSONError(f"Date must be a string, got {type(text).__name__}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SuperJSONError(f"invalid Date {text!r}") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _escape(key: str) -> str:
    if "." in key or "\\" in key:
        return key.replace("\\", "\\\\").replace(".", "\\.")
    return key


def parse_path(path: str, *, legacy: bool) -> list[str]:
    """Split an annotation path into keys (superjson ``parsePath``)."""
    if "\\" not in path:
        return path.split(".")
    keys: list[str] = []
    segment: list[str] = []
    i = 0
    n = len(path)
    while i < n:
        char = path[i]
        if char == "\\":
            nxt = path[i + 1] if i + 1 < n else ""
            if nxt == ".":
                segment.append(".")
                i += 2
                continue
            if not legacy:
                if nxt == "\\":
                    segment.append("\\")
                    i += 2
                    continue
                raise SuperJSONError(f"invalid path {path!r}")
        if char == ".":
            keys.append("".join(segment))
            segment = []
        else:
            segment.append(char)
        i += 1
    keys.append("".join(segment))
    return keys


@dataclass(frozen=True, slots=True)
class _Registered:
    py_type: type
    name: str
    kind: Literal["custom", "class"]
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    tree: list[Any]


class SuperJSON:
    """A SuperJSON codec with its own registry of extra types (see :meth:`register`)."""

    def __init__(self) -> None:
        self._by_type: dict[type, _Registered | None] = {}
        self._registered: list[_Registered] = []
        self._by_name: dict[tuple[str, str], _Registered] = {}

    # ------------------------------------------------------------------ registry
    def register(
        self,
        py_type: type,
        name: str,
        encode: Callable[[Any], Any],
        decode: Callable[[Any], Any],
        *,
        kind: Literal["custom", "class"] = "custom",
    ) -> None:
        """Send instances of ``py_type`` (and subclasses) as ``[kind, name]``.

        ``custom`` (superjson ``registerCustom``): ``encode`` returns a JSON value sent as is.
        ``class`` (superjson ``registerClass``): ``encode`` returns a dict of properties that is
        itself walked (so it may contain dates etc.). ``decode`` gets the JSON (``custom``) or the
        decoded properties (``class``) back.
        """
        entry = _Registered(py_type, name, kind, encode, decode, [[kind, name]])
        self._registered = [r for r in self._registered if (r.kind, r.name) != (kind, name)]
        self._registered.append(entry)
        self._by_name[(kind, name)] = entry
        self._by_type.clear()

    def _lookup(self, t: type) -> _Registered | None:
        try:
            return self._by_type[t]
        except KeyError:
            found = None
            for entry in reversed(self._registered):
                if issubclass(t, entry.py_type):
                    found = entry
                    break
            self._by_type[t] = found
            return found

    # ------------------------------------------------------------------ encode
    def serialize(self, value: Any) -> dict[str, Any]:
        """Python value → ``{"json": ..., "meta"?: {"values": ..., "v"?: 1}}``."""
        walker = _Encoder(self)
        json_value, tree = walker.walk(value)
        if tree is None:
            return {"json": json_value}
        meta: dict[str, Any] = {"values": tree}
        if walker.v1:
            meta["v"] = 1
        return {"json": json_value, "meta": meta}

    # ------------------------------------------------------------------ decode
    def deserialize(self, envelope: Any) -> Any:
        """``{"json", "meta"}`` → Python value. A payload without ``json`` decodes to ``UNDEFINED``.

        The envelope is decoded in place (callers pass freshly parsed JSON).
        Raises :class:`SuperJSONError` on an invalid annotation.
        """
        if not isinstance(envelope, dict) or "json" not in envelope:
            return UNDEFINED
        value = envelope["json"]
        meta = envelope.get("meta")
        if not meta or not isinstance(meta, dict):
            return value
        values = meta.get("values")
        if values is None:
            return value
        version = meta.get("v")
        legacy = not (isinstance(version, int | float) and version >= 1)
        try:
            return _Decoder(self, legacy).apply(value, values)
        except SuperJSONError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise SuperJSONError(f"invalid superjson annotations: {exc}") from exc


class _Encoder:
    __slots__ = ("codec", "v1")

    def __init__(self, codec: SuperJSON) -> None:
        self.codec = codec
        self.v1 = False

    def key(self, key: Any) -> str:
        text = key if type(key) is str else str(key)
        if "\\" in text:
            self.v1 = True
        return _escape(text)

    def walk(self, v: Any) -> tuple[Any, Any]:
        """Return ``(json form, annotation tree or None)``; ``json form is v`` when unchanged."""
        t = type(v)
        if t is str or t is bool or v is None:
            return v, None
        if t is int:
            if -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
                return v, None
            return str(v), _T_BIGINT
        if t is float:
            if v != v:
                return "NaN", _T_NUMBER
            if v == _INF:
                return "Infinity", _T_NUMBER
            if v == -_INF:
                return "-Infinity", _T_NUMBER
            if v == 0.0 and math.copysign(1.0, v) < 0:
                return "-0", _T_NUMBER
            return v, None
        if t is dict:
            return self.walk_dict(v)
        if t is list or t is tuple:
            return self.walk_list(v)
        if t is datetime:
            return format_date(v), _T_DATE
        if v is UNDEFINED:
            return None, _T_UNDEFINED
        return self.walk_other(v, t)

    def walk_dict(self, d: Mapping[Any, Any]) -> tuple[Any, Any]:
        out: dict[Any, Any] | None = None if type(d) is dict else dict(d)
        ann: dict[str, Any] | None = None
        walk = self.walk
        for k, x in d.items():
            tx = type(x)
            if (
                tx is str
                or tx is bool
                or x is None
                or (tx is int and -MAX_SAFE_INTEGER <= x <= MAX_SAFE_INTEGER)
            ):
                continue
            jx, ax = walk(x)
            if jx is not x:
                if out is None:
                    out = dict(d)
                out[k] = jx
            if ax is not None:
                if ann is None:
                    ann = {}
                ek = self.key(k)
                if type(ax) is list:
                    ann[ek] = ax
                else:
                    for p, tree in ax.items():
                        ann[ek + "." + p] = tree
        return (d if out is None else out), ann

    def walk_list(self, lst: list[Any] | tuple[Any, ...]) -> tuple[Any, Any]:
        out: list[Any] | None = None
        ann: dict[str, Any] | None = None
        walk = self.walk
        for i, x in enumerate(lst):
            tx = type(x)
            if (
                tx is str
                or tx is bool
                or x is None
                or (tx is int and -MAX_SAFE_INTEGER <= x <= MAX_SAFE_INTEGER)
            ):
                continue
            jx, ax = walk(x)
            if jx is not x:
                if out is None:
                    out = list(lst)
                out[i] = jx
            if ax is not None:
                if ann is None:
                    ann = {}
                if type(ax) is list:
                    ann[str(i)] = ax
                else:
                    prefix = str(i) + "."
                    for p, tree in ax.items():
                        ann[prefix + p] = tree
        return (lst if out is None else out), ann

    def container(self, kind: str, items: list[Any]) -> tuple[Any, Any]:
        json_items, inner = self.walk_list(items)
        return json_items, ([kind] if inner is None else [kind, inner])

    def walk_other(self, v: Any, t: type) -> tuple[Any, Any]:
        entry = self.codec._lookup(t) if self.codec._registered else None
        if entry is not None:
            if entry.kind == "custom":
                return entry.encode(v), entry.tree
            props, inner = self.walk(entry.encode(v))
            return props, (entry.tree if inner is None else [entry.tree[0], _as_children(inner)])
        if isinstance(v, SuperMap):
            return self.container("map", [[k, x] for k, x in v.items()])
        if isinstance(v, MapEntries):
            return self.container("map", [[k, x] for k, x in v])
        if isinstance(v, set | frozenset | SetItems):
            return self.container("set", list(v))
        if isinstance(v, enum.Enum):
            return self.walk(v.value)
        if isinstance(v, BigInt):
            return str(int(v)), _T_BIGINT
        if isinstance(v, bool):
            return bool(v), None
        if isinstance(v, int):
            return self.walk(int(v))
        if isinstance(v, float):
            return self.walk(float(v))
        if isinstance(v, URL):
            return str(v), _T_URL
        if isinstance(v, str):
            return str(v), None
        if isinstance(v, datetime):
            return format_date(v), _T_DATE
        if isinstance(v, date):
            return v.isoformat(), None
        if isinstance(v, ErrorInfo):
            return {"name": v.name, "message": v.message}, _T_ERROR
        if isinstance(v, BaseException):
            return {"name": type(v).__name__, "message": str(v)}, _T_ERROR
        if isinstance(v, RegExpValue):
            return str(v), _T_REGEXP
        if isinstance(v, bytes | bytearray | memoryview):
            return list(bytes(v)), _T_UINT8
        if isinstance(v, TypedArray):
            return list(v.values), [["typed-array", v.kind]]
        if isinstance(v, Mapping):
            return self.walk_dict(v)
        if isinstance(v, list | tuple):
            return self.walk_list(v)
        model_dump = getattr(v, "model_dump", None)
        if callable(model_dump):
            return self.walk_dict(model_dump(mode="python", by_alias=True))
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return self.walk_dict({f.name: getattr(v, f.name) for f in dataclasses.fields(v)})
        raise SuperJSONError(f"cannot serialize a value of type {t.__module__}.{t.__qualname__}")


def _as_children(tree: Any) -> dict[str, Any]:
    """Children of a ``class`` node: the walker gives a dict for an object root."""
    if isinstance(tree, dict):
        return tree
    return {"": tree}  # pragma: no cover - a class encoder returning a special root value


class _Decoder:
    __slots__ = ("codec", "legacy")

    def __init__(self, codec: SuperJSON, legacy: bool) -> None:
        self.codec = codec
        self.legacy = legacy

    def apply(self, value: Any, tree: Any) -> Any:
        if isinstance(tree, list):
            if not tree:
                raise SuperJSONError("empty annotation")
            if len(tree) > 1 and tree[1]:
                value = self.children(value, tree[1])
            return self.untransform(value, tree[0])
        if isinstance(tree, dict):
            return self.children(value, tree)
        raise SuperJSONError(f"invalid annotation {tree!r}")

    def children(self, value: Any, children: Any) -> Any:
        if not isinstance(children, dict):
            raise SuperJSONError(f"invalid annotation children {children!r}")
        for path, sub in children.items():
            keys = parse_path(path, legacy=self.legacy) if path else []
            if not keys:
                value = self.apply(value, sub)
                continue
            parent = value
            for key in keys[:-1]:
                parent = _child(parent, key)
            last = keys[-1]
            if isinstance(parent, list):
                index = int(last)
                parent[index] = self.apply(parent[index], sub)
            elif isinstance(parent, dict):
                parent[last] = self.apply(parent[last], sub)
            else:
                raise SuperJSONError(f"annotation path {path!r} does not match the value")
        return value

    def untransform(self, v: Any, kind: Any) -> Any:
        if kind == "undefined":
            return UNDEFINED
        if kind == "Date":
            return _parse_date(v)
        if kind == "bigint":
            return BigInt(int(v))
        if kind == "number":
            return _NUMBERS[v] if v in _NUMBERS else float(v)
        if kind == "map":
            pairs = [(_freeze_key(k), x) for k, x in v]
            try:
                return SuperMap(pairs)
            except TypeError:
                return MapEntries((k, x) for k, x in v)
        if kind == "set":
            try:
                return set(v)
            except TypeError:
                return SetItems(v)
        if kind == "Error":
            if not isinstance(v, dict):
                raise SuperJSONError("Error must be an object")
            return ErrorInfo(str(v.get("message", "")), str(v.get("name", "Error")))
        if kind == "regexp":
            text = str(v)
            cut = text.rfind("/")
            return RegExpValue(text[1:cut], text[cut + 1 :])
        if kind == "URL":
            return URL(v)
        if isinstance(kind, list) and len(kind) == 2:
            tag, name = kind
            if tag == "typed-array":
                if name not in TYPED_ARRAY_KINDS:
                    raise SuperJSONError(f"unknown typed array {name!r}")
                if name == "Uint8Array":
                    return bytes(v)
                return TypedArray(str(name), tuple(v))
            if tag in ("custom", "class"):
                entry = self.codec._by_name.get((tag, name))
                if entry is None:
                    raise SuperJSONError(f"unknown {tag} type {name!r}")
                return entry.decode(v)
            if tag == "symbol":
                return Symbol(str(name))
        raise SuperJSONError(f"unknown annotation {kind!r}")


_NUMBERS: Final[dict[str, float]] = {
    "NaN": math.nan,
    "Infinity": math.inf,
    "-Infinity": -math.inf,
    "-0": -0.0,
}


def _freeze_key(key: Any) -> Any:
    """Map keys decoded from JSON arrays become tuples when possible (hashable)."""
    if isinstance(key, list):
        return tuple(_freeze_key(k) for k in key)
    return key


def _child(parent: Any, key: str) -> Any:
    if isinstance(parent, list):
        return parent[int(key)]
    if isinstance(parent, dict):
        return parent[key]
    raise SuperJSONError(f"cannot descend into {type(parent).__name__} at {key!r}")


def iter_annotation_paths(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Flatten an annotation tree into ``(path, type)`` pairs (for tests and debugging)."""
    if isinstance(tree, list):
        if len(tree) > 1 and isinstance(tree[1], dict):
            for path, sub in tree[1].items():
                yield from iter_annotation_paths(sub, f"{prefix}.{path}" if prefix else path)
        yield prefix, tree[0]
    elif isinstance(tree, dict):
        for path, sub in tree.items():
            yield from iter_annotation_paths(sub, f"{prefix}.{path}" if prefix else path)


default: Final = SuperJSON()
serialize: Final = default.serialize
deserialize: Final = default.deserialize
register: Final = default.register
