"""Text nodes, run through the engine: concat, template, regex, length, case, trim, split, join."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.errors import InvalidFlow
from chaingraph_executor.testing import Run, flow_doc, run_flow

REG = builtin_registry()


async def run_node(
    type_: str,
    inputs: dict[str, Any] | None = None,
    feed: dict[str, Any] | None = None,
    ports: list[dict[str, Any]] | None = None,
) -> Run:
    """One node ``n``; each ``feed`` port receives its value at run time from a ``json.parse`` node."""
    nodes: list[dict[str, Any]] = [{"id": "n", "type": type_, "inputs": inputs or {}, "ports": ports or []}]
    edges = []
    for i, (port, value) in enumerate((feed or {}).items()):
        nodes.append({"id": f"src{i}", "type": "json.parse", "inputs": {"text": json.dumps(value)}})
        edges.append((f"src{i}.value", f"n.{port}"))
    return await run_flow(flow_doc(nodes, edges), registry=REG)


async def outputs_of(type_: str, inputs: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    run = await run_node(type_, inputs, **kw)
    assert run.result.status == "completed", run.result.error_message
    return run.result.outputs["n"]


async def error_of(type_: str, inputs: dict[str, Any] | None = None, **kw: Any) -> str:
    run = await run_node(type_, inputs, **kw)
    assert run.result.status == "failed"
    return str(run.of("node:failed")[0].data["error"].message)


# -- concat -----------------------------------------------------------------------------------
async def test_concat_two_values_and_parts() -> None:
    assert await outputs_of("text.concat", {"a": "foo", "b": "bar"}) == {"text": "foobar"}
    assert await outputs_of("text.concat", {"a": "n =", "b": 4, "separator": " "}) == {"text": "n = 4"}
    out = await outputs_of("text.concat", {"parts": ["a", 1, True, None, {"k": 1}], "separator": "|"})
    assert out == {"text": 'a|1|true||{"k":1}'}


async def test_concat_rejects_non_array_parts() -> None:
    assert await error_of("text.concat", feed={"parts": "abc"}) == (
        "text.concat: input 'parts' must be an array, got string"
    )


# -- template ---------------------------------------------------------------------------------
async def test_template_reads_extra_ports_fed_by_edges_and_values() -> None:
    doc = flow_doc(
        [
            {"id": "name", "type": "value.text", "inputs": {"value": "Ada"}},
            {
                "id": "t",
                "type": "text.template",
                "inputs": {
                    "template": "Hello, {{ name }}! You are {{age}}; {{user.city}} / {{user.tags.1}}",
                    "values": {"user": {"city": "London", "tags": ["a", "b"]}, "name": "overridden"},
                    "age": 36,
                },
                "ports": [
                    {"id": "name", "type": "string", "direction": "input"},
                    {"id": "age", "type": "number", "direction": "input"},
                ],
            },
        ],
        [("name.out", "t.name")],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.outputs == {"t": {"text": "Hello, Ada! You are 36; London / b"}}


async def test_template_unknown_placeholder_fails_unless_not_strict() -> None:
    ports = [{"id": "name", "direction": "input"}]
    message = await error_of(
        "text.template", {"template": "{{name}} {{nme}} {{x.y}}", "name": "a"}, ports=ports
    )
    assert message == "text.template: unknown placeholder 'nme', 'x.y' (variables: name)"
    out = await outputs_of(
        "text.template", {"template": "[{{name}}][{{nme}}]", "name": "a", "strict": False}, ports=ports
    )
    assert out == {"text": "[a][]"}


async def test_template_refuses_output_extra_ports() -> None:
    with pytest.raises(InvalidFlow, match="must be an input port"):
        await run_node("text.template", ports=[{"id": "x", "direction": "output"}])


async def test_template_values_must_be_an_object() -> None:
    assert await error_of("text.template", {"template": "x"}, feed={"values": [1]}) == (
        "text.template: input 'values' must be an object, got array"
    )


# -- regex ------------------------------------------------------------------------------------
async def regex(**inputs: Any) -> dict[str, Any]:
    return await outputs_of("text.regex", inputs)


async def test_regex_test_and_flags() -> None:
    assert await regex(pattern="wor", text="Hello World") == {"result": False, "matched": False}
    assert await regex(pattern="wor", text="Hello World", flags="i") == {"result": True, "matched": True}
    assert (await regex(pattern="^b", text="a\nb", flags="m,g"))["result"] is True
    assert (await regex(pattern="a.b", text="a\nb", flags="s"))["result"] is True


async def test_regex_match_and_match_all() -> None:
    out = await regex(pattern=r"(?<key>\w+)=(\d+)", text="x a=1 b=22", operation="match")
    assert out == {
        "result": {"match": "a=1", "index": 2, "groups": ["a", "1"], "named": {"key": "a"}},
        "matched": True,
    }
    out = await regex(pattern=r"(\w)=(\d+)", text="a=1 b=22", operation="matchAll")
    assert [m["groups"] for m in out["result"]] == [["a", "1"], ["b", "22"]]
    assert await regex(pattern="z", text="abc", operation="match") == {"result": None, "matched": False}
    assert await regex(pattern="z", text="abc", operation="matchAll") == {"result": [], "matched": False}


async def test_regex_replace_with_group_references() -> None:
    out = await regex(
        pattern=r"(?P<first>\w+) (\w+)",
        text="John Smith",
        operation="replace",
        replacement="$2, $<first> ($&) $$5",
    )
    assert out == {"result": "Smith, John (John Smith) $5", "matched": True}
    out = await regex(pattern=r"\d", text="a1b2", operation="replace", replacement="#")
    assert out["result"] == "a#b#"


async def test_regex_split() -> None:
    out = await regex(pattern=r"\s*,\s*", text="a , b,c", operation="split")
    assert out == {"result": ["a", "b", "c"], "matched": True}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"pattern": "(ab", "text": "x"},
            "text.regex: invalid pattern at position 0: missing ), unterminated subpattern",
        ),
        ({"pattern": "a", "text": "x", "flags": "gx"}, "text.regex: unknown flag 'x' (use i, m, s)"),
        (
            {"pattern": "(a)", "text": "a", "operation": "replace", "replacement": "$2"},
            "text.regex: replacement refers to group 2, the pattern has 1",
        ),
        (
            {"pattern": "(a)", "text": "a", "operation": "replace", "replacement": "$<nope>"},
            "text.regex: replacement refers to unknown group 'nope'",
        ),
    ],
)
async def test_regex_errors(inputs: dict[str, Any], message: str) -> None:
    assert await error_of("text.regex", inputs) == message


async def test_regex_operation_is_checked() -> None:
    with pytest.raises(InvalidFlow, match="'find' is not one of test, match, matchAll, replace, split"):
        await run_node("text.regex", {"operation": "find"})
    assert await error_of("text.regex", feed={"operation": "find"}) == "text.regex: unknown operation 'find'"


async def test_regex_text_must_be_text() -> None:
    assert await error_of("text.regex", {"pattern": "a"}, feed={"text": 5}) == (
        "text.regex: input 'text' must be a string, got number"
    )


# -- small utilities --------------------------------------------------------------------------
async def test_length_case_trim() -> None:
    assert await outputs_of("text.length", {"text": "héllo"}) == {"length": 5}
    assert await outputs_of("text.case", {"text": "they're here"}) == {"result": "THEY'RE HERE"}
    assert await outputs_of("text.case", {"text": "MiXeD", "mode": "lower"}) == {"result": "mixed"}
    assert await outputs_of("text.case", {"text": "they're  HERE now", "mode": "title"}) == {
        "result": "They're  Here Now"
    }
    assert await outputs_of("text.trim", {"text": "  x  "}) == {"result": "x"}
    assert await outputs_of("text.trim", {"text": "  x  ", "mode": "start"}) == {"result": "x  "}
    assert await outputs_of("text.trim", {"text": "  x  ", "mode": "end"}) == {"result": "  x"}
    assert await outputs_of("text.trim", {"text": "--x--", "chars": "-"}) == {"result": "x"}


async def test_length_and_case_errors() -> None:
    assert await error_of("text.length", feed={"text": ["a"]}) == (
        "text.length: input 'text' must be a string, got array"
    )
    assert await error_of("text.case", {"text": "a"}, feed={"mode": "snake"}) == (
        "text.case: unknown mode 'snake' (use upper, lower or title)"
    )
    assert await error_of("text.trim", {"text": "a"}, feed={"mode": "middle"}) == (
        "text.trim: unknown mode 'middle' (use both, start or end)"
    )


async def test_split_and_join() -> None:
    assert await outputs_of("text.split", {"text": "a,b,,c"}) == {"parts": ["a", "b", "", "c"], "count": 4}
    out = await outputs_of(
        "text.split", {"text": " a ; b ;; ", "separator": ";", "trim": True, "removeEmpty": True}
    )
    assert out == {"parts": ["a", "b"], "count": 2}
    assert await outputs_of("text.split", {"text": "abc", "separator": ""}) == {
        "parts": ["a", "b", "c"],
        "count": 3,
    }
    assert await outputs_of("text.join", {"parts": ["a", 1, None, False]}) == {"text": "a,1,,false"}
    assert await outputs_of("text.join", {"parts": ["x", "y"], "separator": " - "}) == {"text": "x - y"}


async def test_split_errors() -> None:
    assert (
        await error_of("text.split", feed={"text": 1})
        == "text.split: input 'text' must be a string, got number"
    )
    assert await error_of("text.split", {"text": "a"}, feed={"separator": None}) == (
        "text.split: input 'separator' has no value"
    )


async def test_split_then_join_through_edges() -> None:
    doc = flow_doc(
        [
            {"id": "s", "type": "text.split", "inputs": {"text": "c b a", "separator": " "}},
            {"id": "sort", "type": "array.sort"},
            {"id": "j", "type": "text.join", "inputs": {"separator": "+"}},
        ],
        [("s.parts", "sort.array"), ("sort.result", "j.parts")],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.outputs == {"j": {"text": "a+b+c"}}  # only nodes without outgoing edges report


async def test_join_needs_an_array() -> None:
    assert (
        await error_of("text.join", feed={"parts": "abc"})
        == "text.join: input 'parts' must be an array, got string"
    )
