"""Math nodes, run through the engine: results and error messages."""

from __future__ import annotations

from typing import Any

import pytest

from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.testing import flow_doc, run_flow, run_node

REG = builtin_registry()


async def result_of(type_: str, **inputs: Any) -> Any:
    run = await run_node(type_, inputs)
    assert run.result.status == "completed", run.result.error_message
    return run.result.outputs["n"]["result"]


async def error_of(
    type_: str, inputs: dict[str, Any] | None = None, feed: dict[str, Any] | None = None
) -> str:
    run = await run_node(type_, inputs, feed)
    assert run.result.status == "failed"
    failed = run.of("node:failed")
    assert [e.data["node"]["id"] for e in failed] == ["n"]
    message = failed[0].data["error"].message
    assert run.result.error_message == f"Node 'n' failed: {message}"
    return str(message)


@pytest.mark.parametrize(
    ("type_", "inputs", "expected"),
    [
        ("math.add", {"a": 2, "b": 3}, 5),
        ("math.add", {"a": 0.1, "b": 0.2}, pytest.approx(0.3)),
        ("math.subtract", {"a": 2, "b": 3.5}, -1.5),
        ("math.multiply", {"a": 4, "b": 2.5}, 10),
        ("math.multiply", {"a": 7}, 7),
        ("math.divide", {"a": 6, "b": 3}, 2),
        ("math.divide", {"a": 1, "b": 4}, 0.25),
        ("math.modulo", {"a": 7, "b": 3}, 1),
        ("math.modulo", {"a": -7, "b": 3}, 2),
        ("math.modulo", {"a": 5.5, "b": 2}, 1.5),
        ("math.power", {"base": 2, "exponent": 10}, 1024),
        ("math.power", {"base": 9, "exponent": 0.5}, 3),
        ("math.power", {"base": 2, "exponent": -1}, 0.5),
        ("math.round", {"value": 2.5}, 3),
        ("math.round", {"value": -2.5}, -3),
        ("math.round", {"value": 1.005, "digits": 2}, 1.01),
        ("math.round", {"value": 1234, "digits": -2}, 1200),
        ("math.round", {"value": 3.14159, "digits": 3}, 3.142),
        ("math.abs", {"value": -4.5}, 4.5),
        ("math.min", {"a": 3, "b": -1}, -1),
        ("math.min", {"a": 3}, 3),
        ("math.min", {"values": [5, 2, 9]}, 2),
        ("math.max", {"a": 3, "b": -1}, 3),
        ("math.max", {"a": 1, "values": [5, 2, 9]}, 9),
        ("math.sum", {"values": [1, 2, 3]}, 6),
        ("math.sum", {"values": [0.1, 0.2, 0.3]}, 0.6),
        ("math.sum", {}, 0),
    ],
)
async def test_math_results(type_: str, inputs: dict[str, Any], expected: Any) -> None:
    assert await result_of(type_, **inputs) == expected


async def test_integral_results_are_integers() -> None:
    value = await result_of("math.divide", a=6, b=3)
    assert value == 2 and isinstance(value, int)


async def test_math_nodes_chain_through_edges() -> None:
    doc = flow_doc(
        [
            {"id": "x", "type": "value.number", "inputs": {"value": 10}},
            {"id": "half", "type": "math.divide", "inputs": {"b": 2}},
            {"id": "sq", "type": "math.power", "inputs": {"exponent": 2}},
        ],
        [("x.out", "half.a"), ("half.result", "sq.base")],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.outputs == {"sq": {"result": 25}}


@pytest.mark.parametrize(
    ("type_", "inputs", "message"),
    [
        ("math.divide", {"a": 1, "b": 0}, "math.divide: division by zero"),
        ("math.modulo", {"a": 1, "b": 0}, "math.modulo: modulo by zero"),
        ("math.power", {"base": 0, "exponent": -1}, "math.power: zero cannot be raised to a negative power"),
        ("math.power", {"base": -8, "exponent": 0.5}, "math.power: -8 ** 0.5 is not a real number"),
        ("math.power", {"base": 10, "exponent": 400}, "math.power: 10 ** 400 is too large"),
        ("math.power", {"base": 10.5, "exponent": 400}, "math.power: 10.5 ** 400 is too large"),
        ("math.multiply", {"a": 1e308, "b": 10}, "math.multiply: result is not a finite number"),
        ("math.round", {"value": 1, "digits": 30}, "math.round: digits must be between -20 and 20, got 30"),
        (
            "math.round",
            {"value": 1, "digits": 1.5},
            "math.round: input 'digits' must be a whole number, got 1.5",
        ),
        ("math.min", {"values": []}, "math.min: 'values' is empty"),
        ("math.max", {}, "math.max: give 'a' and 'b' or a non-empty 'values' array"),
        ("math.sum", {"values": [1, "2"]}, "math.sum: values[1] must be a number, got string"),
        ("math.max", {"values": [1, True]}, "math.max: values[1] must be a number, got boolean"),
    ],
)
async def test_math_errors(type_: str, inputs: dict[str, Any], message: str) -> None:
    assert await error_of(type_, inputs) == message


async def test_wrong_input_types_arriving_over_edges_fail_clearly() -> None:
    assert await error_of("math.add", feed={"a": "2"}) == "math.add: input 'a' must be a number, got string"
    assert await error_of("math.subtract", feed={"b": None}) == "math.subtract: input 'b' has no value"
    assert (
        await error_of("math.abs", feed={"value": True})
        == "math.abs: input 'value' must be a number, got boolean"
    )
    assert await error_of("math.sum", feed={"values": {"a": 1}}) == (
        "math.sum: input 'values' must be an array, got object"
    )
