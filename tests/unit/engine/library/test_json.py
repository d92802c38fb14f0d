"""JSON nodes, run through the engine."""

from __future__ import annotations

from typing import Any

import pytest

from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.testing import flow_doc, run_flow, run_node
from chaingraph_executor.testing import node_error as error_of

REG = builtin_registry()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": [1, 2.5, null, true]}', {"a": [1, 2.5, None, True]}),
        ("  42 ", 42),
        ('"x"', "x"),
        ("null", None),
    ],
)
async def test_parse(text: str, value: Any) -> None:
    run = await run_node("json.parse", {"text": text})
    assert run.result.status == "completed"
    assert run.result.outputs == {"n": {"value": value}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1,\n "b": }', "json.parse: invalid JSON at line 2, column 7 (position 15): Expecting value"),
        ("", "json.parse: invalid JSON at line 1, column 1 (position 0): Expecting value"),
        ("[1, 2] x", "json.parse: invalid JSON at line 1, column 8 (position 7): Extra data"),
        ("NaN", "json.parse: invalid JSON: NaN is not valid JSON"),
    ],
)
async def test_parse_errors_give_the_position(text: str, message: str) -> None:
    assert await error_of("json.parse", {"text": text}) == message


async def test_stringify_compact_indented_sorted() -> None:
    value = {"b": 1, "a": ["é", None]}
    run = await run_node("json.stringify", {"value": value})
    assert run.result.outputs == {"n": {"text": '{"b":1,"a":["é",null]}'}}
    run = await run_node("json.stringify", {"value": value, "indent": 2, "sortKeys": True})
    assert run.result.outputs == {"n": {"text": '{\n  "a": [\n    "é",\n    null\n  ],\n  "b": 1\n}'}}


async def test_parse_then_stringify_round_trips() -> None:
    doc = flow_doc(
        [
            {"id": "p", "type": "json.parse", "inputs": {"text": '{"k": [1, {"z": "y"}]}'}},
            {"id": "s", "type": "json.stringify"},
        ],
        [("p.value", "s.value")],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.outputs == {"s": {"text": '{"k":[1,{"z":"y"}]}'}}


async def test_stringify_errors() -> None:
    assert await error_of("json.stringify", {"value": 1, "indent": 12}) == (
        "json.stringify: indent must be between 0 and 10, got 12"
    )
    # a stream is not JSON
    doc = flow_doc(
        [{"id": "r", "type": "stream.range"}, {"id": "n", "type": "json.stringify"}],
        [("r.stream", "n.value")],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.status == "failed"
    message = run.of("node:failed")[0].data["error"].message
    assert message.startswith("json.stringify: value cannot be written as JSON: Object of type StreamChannel")
