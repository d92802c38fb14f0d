"""Object and array nodes, run through the engine."""

from __future__ import annotations

from typing import Any

import pytest

from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.testing import flow_doc, run_flow, run_node
from chaingraph_executor.testing import node_error as error_of

REG = builtin_registry()

PEOPLE = [
    {"name": "Ada", "age": 36, "city": {"name": "London"}},
    {"name": "Alan", "age": 41, "city": {"name": "Wilmslow"}},
    {"name": "Grace", "age": None},
    {"name": "Edsger", "age": 72, "city": {"name": "Austin"}},
]


async def outputs_of(
    type_: str, inputs: dict[str, Any] | None = None, feed: dict[str, Any] | None = None
) -> Any:
    run = await run_node(type_, inputs, feed)
    assert run.result.status == "completed", run.result.error_message
    return run.result.outputs["n"]


# -- objects ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.b.0.c", {"value": "deep", "found": True}),
        ("a.b[0].c", {"value": "deep", "found": True}),
        ("a.b.-1", {"value": 7, "found": True}),
        ("a.missing", {"value": "dflt", "found": False}),
        ("a.b.9", {"value": "dflt", "found": False}),
        ("a.b.0.c.d", {"value": "dflt", "found": False}),
        ("n", {"value": None, "found": True}),
    ],
)
async def test_object_get(path: str, expected: dict[str, Any]) -> None:
    obj = {"a": {"b": [{"c": "deep"}, 7]}, "n": None}
    assert await outputs_of("object.get", {"object": obj, "path": path, "default": "dflt"}) == expected


async def test_object_get_works_on_arrays_and_empty_paths() -> None:
    assert await outputs_of("object.get", {"path": "1.name"}, feed={"object": PEOPLE}) == {
        "value": "Alan",
        "found": True,
    }
    assert await outputs_of("object.get", {"object": {"x": 1}}) == {"value": {"x": 1}, "found": True}


async def test_object_set_creates_and_copies() -> None:
    doc = flow_doc(
        [
            {"id": "o", "type": "value.object", "inputs": {"value": {"a": {"list": [1]}}}},
            {"id": "s1", "type": "object.set", "inputs": {"path": "a.list.1", "value": 2}},
            {"id": "s2", "type": "object.set", "inputs": {"path": "x.y.z", "value": True}},
            {"id": "s3", "type": "object.set", "inputs": {"path": "a.list[-1]", "value": "last"}},
        ],
        [("o.out", "s1.object"), ("s1.result", "s2.object"), ("s2.result", "s3.object")],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.outputs == {"s3": {"result": {"a": {"list": [1, "last"]}, "x": {"y": {"z": True}}}}}
    s1 = next(e for e in run.of("node:completed") if e.data["node"]["id"] == "s1")
    assert s1.data["outputs"]["result"] == {"a": {"list": [1, 2]}}  # not changed by s2/s3


@pytest.mark.parametrize(
    ("obj", "path", "message"),
    [
        ({}, "", "object.set: path is empty"),
        ({"a": [1]}, "a.5", "object.set: index 5 is out of range for 'a' (length 1)"),
        ({"a": [1]}, "a.x", "object.set: 'a' is an array; 'x' is not an index"),
        ({"a": "text"}, "a.b", "object.set: cannot set 'a.b': 'a' is a string"),
    ],
)
async def test_object_set_errors(obj: dict[str, Any], path: str, message: str) -> None:
    assert await error_of("object.set", {"object": obj, "path": path, "value": 1}) == message


async def test_pick_keys_values_merge() -> None:
    obj = {"a": 1, "b": {"c": 2}, "d": 3}
    assert await outputs_of("object.pick", {"object": obj, "keys": ["a", "d", "zz"]}) == {
        "result": {"a": 1, "d": 3}
    }
    assert await outputs_of("object.keys", {"object": obj}) == {"keys": ["a", "b", "d"]}
    assert await outputs_of("object.values", {"object": obj}) == {"values": [1, {"c": 2}, 3]}
    merged = await outputs_of("object.merge", {"a": obj, "b": {"b": {"e": 4}, "d": None}})
    assert merged == {"result": {"a": 1, "b": {"e": 4}, "d": None}}
    merged = await outputs_of("object.merge", {"a": obj, "b": {"b": {"e": 4}}, "deep": True})
    assert merged == {"result": {"a": 1, "b": {"c": 2, "e": 4}, "d": 3}}


async def test_object_errors() -> None:
    assert (
        await error_of("object.pick", {"object": {}, "keys": ["a", 1]})
        == "object.pick: keys[1] must be a string, got number"
    )
    assert (
        await error_of("object.keys", feed={"object": [1]})
        == "object.keys: input 'object' must be an object, got array"
    )
    assert (
        await error_of("object.merge", feed={"b": "x"})
        == "object.merge: input 'b' must be an object, got string"
    )


# -- arrays -----------------------------------------------------------------------------------
async def test_array_get() -> None:
    assert await outputs_of("array.get", {"array": [1, 2, 3], "index": -1}) == {"value": 3, "found": True}
    assert await outputs_of("array.get", {"array": [1, 2, 3], "index": 3, "default": 0}) == {
        "value": 0,
        "found": False,
    }
    assert await error_of("array.get", {"array": [1], "index": 0.5}) == (
        "array.get: input 'index' must be a whole number, got 0.5"
    )


async def test_array_pluck_and_map() -> None:
    assert await outputs_of("array.pluck", {"array": PEOPLE, "field": "city.name"}) == {
        "result": ["London", "Wilmslow", None, "Austin"]
    }
    assert await outputs_of("array.map", {"array": PEOPLE, "field": "name"}) == {
        "result": ["Ada", "Alan", "Grace", "Edsger"]
    }
    out = await outputs_of(
        "array.map", {"array": PEOPLE[:2], "template": "{{index}}: {{item.name}} ({{item.age}})"}
    )
    assert out == {"result": ["0: Ada (36)", "1: Alan (41)"]}
    out = await outputs_of("array.map", {"array": [1, "b"], "template": "<{{item}}>"})
    assert out == {"result": ["<1>", "<b>"]}


async def test_array_map_errors() -> None:
    message = "array.map: give either 'field' or 'template' (exactly one)"
    assert await error_of("array.map", {"array": [1]}) == message
    assert await error_of("array.map", {"array": [1], "field": "a", "template": "b"}) == message
    assert await error_of("array.map", {"array": PEOPLE, "template": "{{item.city.name}}"}) == (
        "array.map: element 2: unknown placeholder 'item.city.name'"
    )
    out = await outputs_of(
        "array.map", {"array": PEOPLE[2:], "template": "{{item.city.name}}", "strict": False}
    )
    assert out == {"result": ["", "Austin"]}
    assert await error_of("array.pluck", {"array": [1]}) == "array.pluck: input 'field' is empty"


@pytest.mark.parametrize(
    ("inputs", "names"),
    [
        ({"field": "age"}, ["Ada", "Alan", "Edsger"]),
        ({"field": "age", "operator": "falsy"}, ["Grace"]),
        ({"field": "age", "operator": ">", "value": 40}, ["Alan", "Edsger"]),
        ({"field": "name", "operator": "startsWith", "value": "A"}, ["Ada", "Alan"]),
        ({"field": "city.name", "operator": "==", "value": "Austin"}, ["Edsger"]),
        ({"field": "name", "operator": "contains", "value": "a"}, ["Ada", "Alan", "Grace"]),
    ],
)
async def test_array_filter(inputs: dict[str, Any], names: list[str]) -> None:
    out = await outputs_of("array.filter", {"array": PEOPLE, **inputs})
    assert [p["name"] for p in out["result"]] == names
    assert out["count"] == len(names)


async def test_array_filter_truthiness_of_plain_values() -> None:
    out = await outputs_of("array.filter", {"array": [0, 1, "", "a", [], [0], {}, None, False, True]})
    assert out == {"result": [1, "a", [0], True], "count": 4}


async def test_length_concat_slice() -> None:
    assert await outputs_of("array.length", {"array": [1, 2]}) == {"length": 2}
    assert await outputs_of("array.concat", {"a": [1], "b": [2, 3]}) == {"result": [1, 2, 3]}
    assert await outputs_of("array.slice", {"array": [0, 1, 2, 3, 4], "start": 1, "end": -1}) == {
        "result": [1, 2, 3]
    }
    assert await outputs_of("array.slice", {"array": [0, 1, 2, 3, 4], "start": -2}) == {"result": [3, 4]}
    assert (
        await error_of("array.length", feed={"array": "abc"})
        == "array.length: input 'array' must be an array, got string"
    )
    assert await error_of("array.concat", feed={"a": None}) == "array.concat: input 'a' has no value"


async def test_array_sort() -> None:
    out = await outputs_of("array.sort", {"array": PEOPLE, "field": "age", "descending": True})
    assert [p["name"] for p in out["result"]] == ["Edsger", "Alan", "Ada", "Grace"]  # missing last
    assert await outputs_of("array.sort", {"array": ["b", "c", "a"]}) == {"result": ["a", "b", "c"]}
    stable = [{"k": 1, "i": 0}, {"k": 0, "i": 1}, {"k": 1, "i": 2}]
    out = await outputs_of("array.sort", {"array": stable, "field": "k"})
    assert [x["i"] for x in out["result"]] == [1, 0, 2]


async def test_array_sort_errors() -> None:
    assert (
        await error_of("array.sort", {"array": [1, "a"]})
        == "array.sort: cannot sort a mix of number and string values"
    )
    assert await error_of("array.sort", {"array": [[1], [0]]}) == "array.sort: cannot sort array values"


async def test_array_unique() -> None:
    out = await outputs_of("array.unique", {"array": [1, True, 1, "1", {"a": 1}, {"a": 1}, None, None]})
    assert out == {"result": [1, True, "1", {"a": 1}, None]}
    rows = [{"id": 1, "tag": "a"}, {"id": 2, "tag": "b"}, {"id": 3, "tag": "a"}, {"id": 4}, {"id": 5}]
    out = await outputs_of("array.unique", {"array": rows, "field": "tag"})
    assert [r["id"] for r in out["result"]] == [1, 2, 4]


async def test_array_range() -> None:
    assert await outputs_of("array.range", {"end": 5}) == {"result": [0, 1, 2, 3, 4]}
    assert await outputs_of("array.range", {"start": 10, "end": 0, "step": -3}) == {"result": [10, 7, 4, 1]}
    assert await outputs_of("array.range", {"start": 0, "end": 1, "step": 0.25}) == {
        "result": [0, 0.25, 0.5, 0.75]
    }
    assert await outputs_of("array.range", {"start": 0, "end": 0.3, "step": 0.1}) == {"result": [0, 0.1, 0.2]}
    assert await outputs_of("array.range", {"start": 5, "end": 0}) == {"result": []}
    assert await error_of("array.range", {"end": 3, "step": 0}) == "array.range: step must not be zero"
    assert (
        await error_of("array.range", {"end": 1e9})
        == "array.range: would produce 1,000,000,000 numbers (at most 100,000)"
    )


@pytest.mark.parametrize(
    ("type_", "inputs", "feed", "message"),
    [
        ("object.get", {}, {"path": 1}, "object.get: input 'path' must be a string, got number"),
        ("object.values", {}, {"object": "x"}, "object.values: input 'object' must be an object, got string"),
        (
            "object.set",
            {"path": "a"},
            {"object": [1]},
            "object.set: input 'object' must be an object, got array",
        ),
        (
            "array.pluck",
            {"field": "a"},
            {"array": {}},
            "array.pluck: input 'array' must be an array, got object",
        ),
        ("array.filter", {}, {"array": None}, "array.filter: input 'array' has no value"),
        ("array.filter", {"array": [1]}, {"operator": "~"}, "array.filter: unknown operator '~'"),
        (
            "array.slice",
            {"array": [1]},
            {"start": "1"},
            "array.slice: input 'start' must be a number, got string",
        ),
        (
            "array.sort",
            {},
            {"descending": "yes"},
            "array.sort: input 'descending' must be a boolean, got string",
        ),
        ("array.unique", {}, {"array": 3}, "array.unique: input 'array' must be an array, got number"),
        (
            "array.map",
            {"field": "a"},
            {"array": "abc"},
            "array.map: input 'array' must be an array, got string",
        ),
        ("array.range", {}, {"end": None}, "array.range: input 'end' has no value"),
    ],
)
async def test_wrong_input_types(
    type_: str, inputs: dict[str, Any], feed: dict[str, Any], message: str
) -> None:
    assert await error_of(type_, inputs, feed) == message
