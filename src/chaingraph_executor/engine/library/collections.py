"""Object and array nodes: paths (``a.b.0.c`` or ``a.b[0].c``), picking, merging, mapping, filtering.

Nodes never modify their inputs: every result is a new value.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from chaingraph_executor.domain.flow import PortType
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.library._common import (
    COMPARE_OPERATORS,
    LibraryNode,
    NodeInputError,
    clean_number,
    compare,
    json_type,
    lookup,
    render_template,
    split_path,
)
from chaingraph_executor.engine.nodes import Input, Output

_MAX_RANGE = 100_000


# -- objects ----------------------------------------------------------------------------------
class ObjectGet(LibraryNode):
    type = "object.get"
    title = "Get by path"
    category = "collections"
    description = (
        "The value at `path` (`a.b.0.c`, negative indices count from the end) in an object or array; "
        "`default` and found=false when the path leads nowhere. An empty path gives the whole value."
    )
    object = Input(PortType.ANY, description="an object or an array")
    path = Input(PortType.STRING, default="")
    default = Input(PortType.ANY)
    value = Output(PortType.ANY)
    found = Output(PortType.BOOLEAN)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        found, value = lookup(ctx.inputs.get("object"), split_path(self.read_string(ctx, "path")))
        return {"value": value if found else ctx.inputs.get("default"), "found": found}


class ObjectSet(LibraryNode):
    type = "object.set"
    title = "Set by path"
    category = "collections"
    description = (
        "A copy of `object` with `value` at `path`; missing objects on the way are created, an array "
        "index may be an existing one or the length (append)."
    )
    object = Input(PortType.OBJECT, default={})
    path = Input(PortType.STRING, default="")
    value = Input(PortType.ANY)
    result = Output(PortType.OBJECT)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        root = copy.deepcopy(self.opt_object(ctx, "object") or {})
        path = self.read_string(ctx, "path")
        segments = split_path(path)
        if not segments:
            raise self.fail("path is empty")
        current: Any = root
        for depth, seg in enumerate(segments):
            last = depth == len(segments) - 1
            where = ".".join(segments[:depth]) or "the object"
            if isinstance(current, dict):
                if last:
                    current[seg] = ctx.inputs.get("value")
                elif current.get(seg) is None:
                    current[seg] = {}
                current = current[seg]
            elif isinstance(current, list):
                try:
                    index = int(seg)
                except ValueError:
                    raise self.fail(f"'{where}' is an array; '{seg}' is not an index") from None
                if index < 0:
                    index += len(current)
                if last and index == len(current):
                    current.append(ctx.inputs.get("value"))
                elif 0 <= index < len(current):
                    if last:
                        current[index] = ctx.inputs.get("value")
                    current = current[index]
                else:
                    raise self.fail(f"index {seg} is out of range for '{where}' (length {len(current)})")
            else:
                raise self.fail(f"cannot set '{path}': '{where}' is a {json_type(current)}")
        return {"result": root}


class ObjectPick(LibraryNode):
    type = "object.pick"
    title = "Pick keys"
    category = "collections"
    description = "A new object with only the listed keys (missing keys are left out)."
    object = Input(PortType.OBJECT, default={})
    keys = Input(PortType.ARRAY, default=[])
    result = Output(PortType.OBJECT)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        obj = self.read_object(ctx, "object")
        keys = self.read_array(ctx, "keys")
        for i, key in enumerate(keys):
            if not isinstance(key, str):
                raise self.fail(f"keys[{i}] must be a string, got {json_type(key)}")
        return {"result": {k: copy.deepcopy(obj[k]) for k in keys if k in obj}}


class ObjectKeys(LibraryNode):
    type = "object.keys"
    title = "Keys"
    category = "collections"
    description = "The keys of an object, in order."
    object = Input(PortType.OBJECT, default={})
    keys = Output(PortType.ARRAY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"keys": list(self.read_object(ctx, "object"))}


class ObjectValues(LibraryNode):
    type = "object.values"
    title = "Values"
    category = "collections"
    description = "The values of an object, in key order."
    object = Input(PortType.OBJECT, default={})
    values = Output(PortType.ARRAY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"values": copy.deepcopy(list(self.read_object(ctx, "object").values()))}


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        old = out.get(key)
        out[key] = _deep_merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


class ObjectMerge(LibraryNode):
    type = "object.merge"
    title = "Merge objects"
    category = "collections"
    description = "The keys of a and b (b wins); `deep` merges nested objects too instead of replacing them."
    a = Input(PortType.OBJECT, default={})
    b = Input(PortType.OBJECT, default={})
    deep = Input(PortType.BOOLEAN, default=False)
    result = Output(PortType.OBJECT)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        a = copy.deepcopy(self.read_object(ctx, "a"))
        b = copy.deepcopy(self.read_object(ctx, "b"))
        return {"result": _deep_merge(a, b) if self.read_boolean(ctx, "deep") else {**a, **b}}


# -- arrays -----------------------------------------------------------------------------------
class _ArrayNode(LibraryNode):
    category = "collections"
    array = Input(PortType.ARRAY, default=[])

    def field_of(self, item: Any, segments: list[str]) -> Any:
        return lookup(item, segments)[1]


class ArrayGet(_ArrayNode):
    type = "array.get"
    title = "Element at"
    description = (
        "The element at `index` (negative counts from the end); `default` and found=false when out of range."
    )
    index = Input(PortType.NUMBER, default=0)
    default = Input(PortType.ANY)
    value = Output(PortType.ANY)
    found = Output(PortType.BOOLEAN)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        items = self.read_array(ctx, "array")
        index = self.read_integer(ctx, "index")
        if -len(items) <= index < len(items):
            return {"value": items[index], "found": True}
        return {"value": ctx.inputs.get("default"), "found": False}


class ArrayPluck(_ArrayNode):
    type = "array.pluck"
    title = "Pluck field"
    description = "The value at `field` (a path) of each element; null where it is missing."
    field = Input(PortType.STRING, default="")
    result = Output(PortType.ARRAY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        items = self.read_array(ctx, "array")
        field = self.read_string(ctx, "field")
        if not field:
            raise self.fail("input 'field' is empty")
        segments = split_path(field)
        return {"result": [self.field_of(item, segments) for item in items]}


class ArrayMap(_ArrayNode):
    type = "array.map"
    title = "Map"
    description = (
        "Transform each element: either pluck `field` (a path), or render `template` with "
        "`{{item}}`, `{{item.x}}` and `{{index}}`. Give exactly one of them."
    )
    field = Input(PortType.STRING, default="")
    template = Input(PortType.STRING, default="")
    strict = Input(PortType.BOOLEAN, default=True, description="fail on unknown placeholders")
    result = Output(PortType.ARRAY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        items = self.read_array(ctx, "array")
        field = self.read_string(ctx, "field")
        template = self.read_string(ctx, "template")
        if bool(field) == bool(template):
            raise self.fail("give either 'field' or 'template' (exactly one)")
        if field:
            segments = split_path(field)
            return {"result": [self.field_of(item, segments) for item in items]}
        strict = self.read_boolean(ctx, "strict")
        out = []
        for index, item in enumerate(items):
            text, unknown = render_template(template, {"item": item, "index": index})
            if unknown and strict:
                raise self.fail(f"element {index}: unknown placeholder '{unknown[0]}'")
            out.append(text)
        return {"result": out}


def _truthy(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


class ArrayFilter(_ArrayNode):
    type = "array.filter"
    title = "Filter"
    description = (
        "Keep the elements (or their `field`) that are truthy / falsy (null, false, 0, '', [] and {} are "
        "falsy), or that compare to `value` with the operator; elements that cannot be compared are dropped."
    )
    field = Input(PortType.STRING, default="", description="path inside each element; empty: the element")
    operator = Input(PortType.ENUM, default="truthy", options=["truthy", "falsy", *COMPARE_OPERATORS])
    value = Input(PortType.ANY)
    result = Output(PortType.ARRAY)
    count = Output(PortType.NUMBER)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        items = self.read_array(ctx, "array")
        segments = split_path(self.read_string(ctx, "field"))
        operator = self.read_string(ctx, "operator")
        if operator not in ("truthy", "falsy", *COMPARE_OPERATORS):
            raise self.fail(f"unknown operator '{operator}'")
        target = ctx.inputs.get("value")
        kept = []
        for item in items:
            subject = self.field_of(item, segments)
            if operator == "truthy":
                keep = _truthy(subject)
            elif operator == "falsy":
                keep = not _truthy(subject)
            else:
                try:
                    keep = compare(operator, subject, target)
                except NodeInputError:
                    keep = False
            if keep:
                kept.append(item)
        return {"result": kept, "count": len(kept)}


class ArrayLength(_ArrayNode):
    type = "array.length"
    title = "Array length"
    description = "The number of elements."
    length = Output(PortType.NUMBER)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"length": len(self.read_array(ctx, "array"))}


class ArrayConcat(LibraryNode):
    type = "array.concat"
    title = "Concatenate arrays"
    category = "collections"
    description = "The elements of a followed by those of b."
    a = Input(PortType.ARRAY, default=[])
    b = Input(PortType.ARRAY, default=[])
    result = Output(PortType.ARRAY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"result": [*self.read_array(ctx, "a"), *self.read_array(ctx, "b")]}


class ArraySlice(_ArrayNode):
    type = "array.slice"
    title = "Slice"
    description = "Elements from `start` up to (not including) `end`; negative positions count from the end."
    start = Input(PortType.NUMBER, default=0)
    end = Input(PortType.NUMBER, description="empty: to the end")
    result = Output(PortType.ARRAY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        items = self.read_array(ctx, "array")
        return {"result": items[self.read_integer(ctx, "start") : self.opt_integer(ctx, "end")]}


class ArraySort(_ArrayNode):
    type = "array.sort"
    title = "Sort"
    description = (
        "Sort by the elements (or their `field`): numbers, strings or booleans, not a mix; elements "
        "without a value go last. Stable."
    )
    field = Input(PortType.STRING, default="", description="path inside each element; empty: the element")
    descending = Input(PortType.BOOLEAN, default=False)
    result = Output(PortType.ARRAY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        items = self.read_array(ctx, "array")
        segments = split_path(self.read_string(ctx, "field"))
        keyed = [(self.field_of(item, segments), item) for item in items]
        present = [pair for pair in keyed if pair[0] is not None]
        missing = [item for key, item in keyed if key is None]
        kinds = sorted({json_type(key) for key, _ in present})
        if len(kinds) > 1:
            raise self.fail(f"cannot sort a mix of {' and '.join(kinds)} values")
        if kinds and kinds[0] not in ("number", "string", "boolean"):
            raise self.fail(f"cannot sort {kinds[0]} values")
        present.sort(key=lambda pair: pair[0], reverse=self.read_boolean(ctx, "descending"))
        return {"result": [item for _, item in present] + missing}


def _canonical(value: Any) -> str:
    return json_type(value) + ":" + json.dumps(value, sort_keys=True, default=str)


class ArrayUnique(_ArrayNode):
    type = "array.unique"
    title = "Unique"
    description = "Drop repeated elements (or elements with a repeated `field`), keeping the first."
    field = Input(PortType.STRING, default="", description="path inside each element; empty: the element")
    result = Output(PortType.ARRAY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        items = self.read_array(ctx, "array")
        segments = split_path(self.read_string(ctx, "field"))
        seen: set[str] = set()
        out = []
        for item in items:
            key = _canonical(self.field_of(item, segments))
            if key not in seen:
                seen.add(key)
                out.append(item)
        return {"result": out}


class ArrayRange(LibraryNode):
    type = "array.range"
    title = "Range"
    category = "collections"
    description = f"Numbers from `start` up to (not including) `end` by `step` (at most {_MAX_RANGE:,})."
    start = Input(PortType.NUMBER, default=0)
    end = Input(PortType.NUMBER, default=10)
    step = Input(PortType.NUMBER, default=1)
    result = Output(PortType.ARRAY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        start = self.read_number(ctx, "start")
        end = self.read_number(ctx, "end")
        step = self.read_number(ctx, "step")
        if step == 0:
            raise self.fail("step must not be zero")
        count = max(0, math.ceil((end - start) / step))
        if count > _MAX_RANGE:
            raise self.fail(f"would produce {count:,} numbers (at most {_MAX_RANGE:,})")
        if isinstance(start, int) and isinstance(end, int) and isinstance(step, int):
            return {"result": list(range(start, end, step))}
        return {"result": [clean_number(round(start + i * step, 12)) for i in range(count)]}


COLLECTION_NODES: tuple[type[LibraryNode], ...] = (
    ObjectGet,
    ObjectSet,
    ObjectPick,
    ObjectKeys,
    ObjectValues,
    ObjectMerge,
    ArrayGet,
    ArrayPluck,
    ArrayMap,
    ArrayFilter,
    ArrayLength,
    ArrayConcat,
    ArraySlice,
    ArraySort,
    ArrayUnique,
    ArrayRange,
)
