"""Flow control nodes, run through the engine: branch, gate, switch, merge, sleep, fail, is-root."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from chaingraph_executor.domain.execution import ExecutionInfo, ExternalEvent
from chaingraph_executor.engine.control import ExecutionControl
from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.errors import InvalidFlow
from chaingraph_executor.testing import Run, flow_doc, run_flow, run_node

REG = builtin_registry()


def n(id_: str, type_: str, ports: list[dict[str, Any]] | None = None, **inputs: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "inputs": inputs, "ports": ports or []}


def started(run: Run) -> set[str]:
    return {e.data["node"]["id"] for e in run.of("node:started")}


# -- branch -----------------------------------------------------------------------------------
@pytest.mark.parametrize("condition", [True, False])
async def test_branch_publishes_only_the_path_taken(condition: bool) -> None:
    doc = flow_doc(
        [
            n("b", "flow.branch", condition=condition, value="payload"),
            n("yes", "text.concat", b="!"),
            n("no", "text.concat", b="?"),
            n("merge", "flow.merge"),
            n("cond", "logic.not"),
        ],
        [
            ("b.then", "yes.a"),
            ("b.else", "no.a"),
            ("yes.text", "merge.a"),
            ("no.text", "merge.a"),
            ("b.result", "cond.value"),
        ],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.status == "completed"
    taken, skipped = ("yes", "no") if condition else ("no", "yes")
    assert taken in started(run) and skipped not in started(run)
    suffix = "!" if condition else "?"
    assert run.result.outputs["merge"] == {"value": f"payload{suffix}", "source": "a"}
    assert run.result.outputs["cond"] == {"result": not condition}
    completed = next(e for e in run.of("node:completed") if e.data["node"]["id"] == "b")
    assert completed.data["outputs"] == {"then" if condition else "else": "payload", "result": condition}


async def test_branch_condition_must_be_boolean() -> None:
    run = await run_node("flow.branch", feed={"condition": "yes"})
    assert (
        run.result.error_message
        == "Node 'n' failed: flow.branch: input 'condition' must be a boolean, got string"
    )


# -- gate -------------------------------------------------------------------------------------
@pytest.mark.parametrize("open_", [True, False])
async def test_gate(open_: bool) -> None:
    doc = flow_doc(
        [n("g", "flow.gate", value=42, open=open_), n("after", "math.add", b=1)], [("g.out", "after.a")]
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.status == "completed"
    assert ("after" in started(run)) is open_
    if open_:
        assert run.result.outputs == {"after": {"result": 43}}


async def test_gate_is_closed_by_default() -> None:
    doc = flow_doc([n("g", "flow.gate", value=1), n("after", "value.number")], [("g.out", "after.value")])
    run = await run_flow(doc, registry=REG)
    assert "after" not in started(run)


async def test_gate_open_must_be_boolean() -> None:
    run = await run_node("flow.gate", {"value": 1}, feed={"open": 1})
    assert (
        run.result.error_message == "Node 'n' failed: flow.gate: input 'open' must be a boolean, got number"
    )


# -- switch -----------------------------------------------------------------------------------
CASES = [{"id": c, "direction": "output"} for c in ("red", "2", "true")]


def switch_flow(value: Any) -> dict[str, Any]:
    nodes = [n("s", "flow.switch", ports=CASES, value=value)]
    edges = []
    for port in ("red", "2", "true", "default"):
        nodes.append(n(f"on_{port}", "flow.merge"))
        edges.append((f"s.{port}", f"on_{port}.a"))
    return flow_doc(nodes, edges)


@pytest.mark.parametrize(
    ("value", "port"),
    [("red", "red"), (2, "2"), (2.0, "2"), (True, "true"), ("blue", "default"), (None, "default")],
)
async def test_switch_routes_to_the_matching_case(value: Any, port: str) -> None:
    run = await run_flow(switch_flow(value), registry=REG)
    assert run.result.status == "completed"
    ran = {node for node in started(run) if node.startswith("on_")}
    assert ran == {f"on_{port}"}
    assert run.result.outputs[f"on_{port}"]["value"] == value
    completed = next(e for e in run.of("node:completed") if e.data["node"]["id"] == "s")
    assert completed.data["outputs"]["matched"] == port


async def test_switch_refuses_input_extra_ports_and_clashing_names() -> None:
    with pytest.raises(InvalidFlow, match="must be an output port"):
        await run_flow(
            flow_doc([n("s", "flow.switch", ports=[{"id": "x", "direction": "input"}])]), registry=REG
        )
    with pytest.raises(InvalidFlow, match="clashes with a built-in port"):
        await run_flow(
            flow_doc([n("s", "flow.switch", ports=[{"id": "default", "direction": "output"}])]), registry=REG
        )


# -- merge ------------------------------------------------------------------------------------
async def test_merge_takes_the_first_input_with_a_value() -> None:
    run = await run_node("flow.merge", {"b": "second", "c": "third"})
    assert run.result.outputs == {"n": {"value": "second", "source": "b"}}
    run = await run_node("flow.merge")
    assert run.result.outputs == {"n": {"value": None, "source": ""}}


# -- sleep ------------------------------------------------------------------------------------
async def test_sleep_waits_and_passes_the_value() -> None:
    t0 = time.perf_counter()
    run = await run_node("flow.sleep", {"ms": 30, "value": {"k": 1}})
    assert time.perf_counter() - t0 >= 0.03
    assert run.result.outputs == {"n": {"out": {"k": 1}}}


async def test_sleep_is_cancelled_by_stop() -> None:
    control = ExecutionControl()
    task = asyncio.create_task(
        run_flow(flow_doc([n("s", "flow.sleep", ms=10_000)]), registry=REG, control=control)
    )
    await asyncio.sleep(0.02)
    t0 = time.perf_counter()
    control.stop("enough")
    run = await asyncio.wait_for(task, 1)
    assert time.perf_counter() - t0 < 0.5
    assert run.result.status == "stopped"


async def test_sleep_errors() -> None:
    run = await run_node("flow.sleep", {"ms": -1})
    assert run.result.error_message == "Node 'n' failed: flow.sleep: ms must not be negative, got -1"


# -- fail -------------------------------------------------------------------------------------
async def test_fail_feeds_an_error_handler_and_the_run_completes() -> None:
    doc = flow_doc(
        [
            n("f", "flow.fail", message="kaput"),
            n("after", "debug.log"),
            n("handler", "text.concat", a="handled: "),
        ],
        [("f.out", "after.value"), ("f.__errorMessage", "handler.b")],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.status == "completed"
    assert "after" not in started(run)
    assert run.result.outputs == {"handler": {"text": "handled: kaput"}}


async def test_unhandled_fail_fails_the_run() -> None:
    run = await run_node("flow.fail")
    assert run.result.status == "failed"
    assert run.result.error_message == "Node 'n' failed: failed on purpose"


async def test_fail_can_be_skipped_with_execute_false() -> None:
    doc = flow_doc(
        [n("off", "value.boolean", value=False), n("f", "flow.fail")], [("off.out", "f.__execute")]
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.status == "completed"
    assert [e.data["nodeId"] for e in run.of("node:skipped")] == ["f"]


# -- is-root ----------------------------------------------------------------------------------
async def test_is_root_in_root_and_child_runs() -> None:
    run = await run_node("flow.is-root")
    assert run.result.outputs == {"n": {"isRoot": True, "depth": 0}}
    doc = flow_doc(
        [n("l", "event.listener", eventName="go"), n("r", "flow.is-root")], [("l.payload", "r.__execute")]
    )
    info = ExecutionInfo(
        "EXchild",
        "flow",
        parent_execution_id="EXparent",
        root_execution_id="EXroot",
        execution_depth=2,
        event=ExternalEvent(event_name="go", payload=True),
    )
    run = await run_flow(doc, registry=REG, info=info)
    assert run.result.outputs == {"r": {"isRoot": False, "depth": 2}}
