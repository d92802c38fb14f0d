"""The debug log node, run through the engine."""

from __future__ import annotations

from typing import Any

import pytest

from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.errors import InvalidFlow
from chaingraph_executor.testing import flow_doc, run_flow, run_node

REG = builtin_registry()


@pytest.mark.parametrize(
    ("inputs", "line"),
    [
        ({"message": "hello"}, "[info] hello"),
        ({"message": "user", "value": {"id": 1}, "level": "warn"}, '[warn] user: {"id":1}'),
        ({"value": "just text", "level": "debug"}, "[debug] just text"),
        ({"value": 2.0, "level": "error"}, "[error] 2"),
        ({}, "[info] "),
    ],
)
async def test_log_publishes_a_debug_event_and_passes_the_value(inputs: dict[str, Any], line: str) -> None:
    run = await run_node("debug.log", inputs)
    assert run.result.status == "completed"
    logs = run.of("node:debug-log-string")
    assert [(e.data["nodeId"], e.data["log"]) for e in logs] == [("n", line)]
    assert run.result.outputs == {"n": {"out": inputs.get("value"), "text": line}}


async def test_log_in_the_middle_of_a_chain() -> None:
    doc = flow_doc(
        [
            {"id": "x", "type": "value.number", "inputs": {"value": 3}},
            {"id": "log", "type": "debug.log", "inputs": {"message": "x is"}},
            {"id": "sq", "type": "math.multiply", "inputs": {"b": 3}},
        ],
        [("x.out", "log.value"), ("log.out", "sq.a")],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.outputs == {"sq": {"result": 9}}
    assert run.of("node:debug-log-string")[0].data["log"] == "[info] x is: 3"


async def test_log_level_is_checked() -> None:
    with pytest.raises(InvalidFlow, match="'loud' is not one of debug, info, warn, error"):
        await run_node("debug.log", {"level": "loud"})
    run = await run_node("debug.log", feed={"level": "loud"})
    assert (
        run.result.error_message
        == "Node 'n' failed: debug.log: unknown level 'loud' (use debug, info, warn, error)"
    )
