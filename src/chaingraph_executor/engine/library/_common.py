"""Shared helpers of the built-in nodes: typed input access, value paths, templates, comparisons.

Every built-in node derives from :class:`LibraryNode`, whose accessors fail the node with a
message that names the node type and the port (``"math.add: input 'a' must be a number, got
string"``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.nodes import Node

Number = int | float

#: The operators understood by ``logic.compare`` and ``array.filter``.
COMPARE_OPERATORS = ["==", "!=", ">", ">=", "<", "<=", "contains", "startsWith", "endsWith"]

_MAX_SAFE_INTEGER = 2**53


class NodeInputError(ValueError):
    """A node received inputs it cannot work with."""


def json_type(value: Any) -> str:
    """The JSON name of a value's type (``number``, ``string``...), for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def clean_number(value: Number) -> Number:
    """Integral floats become ints (``6 / 3`` is ``2``, as in JSON); non-finite results are refused."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NodeInputError("result is not a finite number")
        if value.is_integer() and abs(value) < _MAX_SAFE_INTEGER:
            return int(value)
    return value


def to_json_text(value: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """JSON text of ``value``; objects that JSON cannot express are written as their ``str``."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(
        value, ensure_ascii=False, indent=indent, sort_keys=sort_keys, separators=separators, default=str
    )


def text_of(value: Any) -> str:
    """How a value reads inside text: strings as is, ``null`` as nothing, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(clean_number(value)) if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return str(value)
    return to_json_text(value)


# -- paths ------------------------------------------------------------------------------------
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")


def split_path(path: str) -> list[str]:
    """``"a.b[0].c"`` or ``"a.b.0.c"`` -> ``["a", "b", "0", "c"]`` (empty path: no segments)."""
    return [seg for seg in _INDEX.sub(r".\1", path).split(".") if seg != ""]


def _as_index(segment: str, length: int) -> int | None:
    try:
        index = int(segment)
    except ValueError:
        return None
    if index < 0:
        index += length
    return index if 0 <= index < length else None


def lookup(value: Any, segments: list[str]) -> tuple[bool, Any]:
    """Follow ``segments`` through objects (keys) and arrays (indices, negative from the end)."""
    current = value
    for seg in segments:
        if isinstance(current, Mapping):
            if seg not in current:
                return False, None
            current = current[seg]
        elif isinstance(current, list):
            index = _as_index(seg, len(current))
            if index is None:
                return False, None
            current = current[index]
        else:
            return False, None
    return True, current


# -- templates --------------------------------------------------------------------------------
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def render_template(template: str, variables: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Replace ``{{name}}`` / ``{{name.path.0}}`` placeholders; returns the text and the unknown ones.

    Unknown placeholders render as the empty string; the caller decides whether that is an error.
    """
    unknown: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        expr = match.group(1)
        found, value = lookup(variables, split_path(expr)) if expr else (False, None)
        if not found:
            if expr not in unknown:
                unknown.append(expr)
            return ""
        return text_of(value)

    return _PLACEHOLDER.sub(substitute, template), unknown


# -- comparisons ------------------------------------------------------------------------------
def values_equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, arrays and objects compare element by element."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if is_number(a) or is_number(b):
        return is_number(a) and is_number(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _ordered(op: str, a: Any, b: Any) -> tuple[Any, Any]:
    if (is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
        return a, b
    raise NodeInputError(f"cannot compare {json_type(a)} with {json_type(b)} using '{op}'")


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, str):
        if not isinstance(b, str):
            raise NodeInputError(f"'contains' on a string needs a string to look for, got {json_type(b)}")
        return b in a
    if isinstance(a, list):
        return any(values_equal(item, b) for item in a)
    if isinstance(a, dict):
        return isinstance(b, str) and b in a
    raise NodeInputError(f"'contains' needs a string, array or object to look in, got {json_type(a)}")


def _affix(op: str, a: Any, b: Any) -> bool:
    if not isinstance(a, str) or not isinstance(b, str):
        raise NodeInputError(f"'{op}' needs two strings, got {json_type(a)} and {json_type(b)}")
    return a.startswith(b) if op == "startsWith" else a.endswith(b)


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": values_equal,
    "!=": lambda a, b: not values_equal(a, b),
    ">": lambda a, b: bool(_ordered(">", a, b)[0] > b),
    ">=": lambda a, b: bool(_ordered(">=", a, b)[0] >= b),
    "<": lambda a, b: bool(_ordered("<", a, b)[0] < b),
    "<=": lambda a, b: bool(_ordered("<=", a, b)[0] <= b),
    "contains": _contains,
    "startsWith": lambda a, b: _affix("startsWith", a, b),
    "endsWith": lambda a, b: _affix("endsWith", a, b),
}


def compare(op: str, a: Any, b: Any) -> bool:
    """Apply one of :data:`COMPARE_OPERATORS`; raises ``NodeInputError`` on incomparable values."""
    fn = _COMPARISONS.get(op)
    if fn is None:
        raise NodeInputError(f"unknown operator '{op}' (use one of {', '.join(COMPARE_OPERATORS)})")
    return fn(a, b)


# -- the base class ---------------------------------------------------------------------------
class LibraryNode(Node):
    """Base of the built-in nodes: typed input accessors with clear error messages."""

    def fail(self, message: str) -> NodeInputError:
        """An error to raise, its message prefixed with the node type."""
        return NodeInputError(f"{self.type}: {message}")

    def _typed(self, ctx: NodeContext, port: str, ok: Callable[[Any], bool], expected: str) -> Any:
        value = ctx.inputs.get(port)
        if value is None:
            raise self.fail(f"input '{port}' has no value")
        if not ok(value):
            raise self.fail(f"input '{port}' must be {expected}, got {json_type(value)}")
        return value

    def _optional(self, ctx: NodeContext, port: str, ok: Callable[[Any], bool], expected: str) -> Any:
        if ctx.inputs.get(port) is None:
            return None
        return self._typed(ctx, port, ok, expected)

    def read_number(self, ctx: NodeContext, port: str) -> Number:
        value: Number = self._typed(ctx, port, is_number, "a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"input '{port}' must be a finite number")
        return value

    def opt_number(self, ctx: NodeContext, port: str) -> Number | None:
        return None if ctx.inputs.get(port) is None else self.read_number(ctx, port)

    def read_integer(self, ctx: NodeContext, port: str) -> int:
        value = self.read_number(ctx, port)
        if isinstance(value, float):
            if not value.is_integer():
                raise self.fail(f"input '{port}' must be a whole number, got {value}")
            return int(value)
        return value

    def opt_integer(self, ctx: NodeContext, port: str) -> int | None:
        return None if ctx.inputs.get(port) is None else self.read_integer(ctx, port)

    def read_string(self, ctx: NodeContext, port: str) -> str:
        value: str = self._typed(ctx, port, lambda v: isinstance(v, str), "a string")
        return value

    def read_boolean(self, ctx: NodeContext, port: str) -> bool:
        value: bool = self._typed(ctx, port, lambda v: isinstance(v, bool), "a boolean")
        return value

    def read_array(self, ctx: NodeContext, port: str) -> list[Any]:
        value: list[Any] = self._typed(ctx, port, lambda v: isinstance(v, list), "an array")
        return value

    def opt_array(self, ctx: NodeContext, port: str) -> list[Any] | None:
        value: list[Any] | None = self._optional(ctx, port, lambda v: isinstance(v, list), "an array")
        return value

    def read_object(self, ctx: NodeContext, port: str) -> dict[str, Any]:
        value: dict[str, Any] = self._typed(ctx, port, lambda v: isinstance(v, dict), "an object")
        return value

    def opt_object(self, ctx: NodeContext, port: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self._optional(ctx, port, lambda v: isinstance(v, dict), "an object")
        return value

    def check_numbers(self, values: list[Any], port: str) -> list[Number]:
        """Check that every element of an array input is a number."""
        for i, item in enumerate(values):
            if not is_number(item):
                raise self.fail(f"{port}[{i}] must be a number, got {json_type(item)}")
        return values
