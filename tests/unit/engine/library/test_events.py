"""Event nodes, run through the engine: emitting in a root run, listening in a child run."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from chaingraph_executor.domain.execution import ExecutionInfo, ExternalEvent
from chaingraph_executor.domain.flow import FlowNode
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.engine.library.events import EventListener
from chaingraph_executor.errors import InvalidFlow
from chaingraph_executor.testing import flow_doc, run_flow

REG = builtin_registry()


def n(id_: str, type_: str, **inputs: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "inputs": inputs}


def flow() -> dict[str, Any]:
    return flow_doc(
        [
            n("emit_a", "event.emit", eventName="order.created", payload={"id": 7}),
            n("emit_b", "event.emit", eventName="order.cancelled"),
            n("on_created", "event.listener", eventName="order.created"),
            n("id", "object.get", path="id"),
            n("on_cancelled", "event.listener", eventName="order.cancelled"),
            n("bye", "debug.log", message="cancelled"),
        ],
        [("on_created.payload", "id.object"), ("on_cancelled.payload", "bye.value")],
    )


def started(run: Any) -> set[str]:
    return {e.data["node"]["id"] for e in run.of("node:started")}


def child(event: str, payload: Any = None) -> ExecutionInfo:
    return ExecutionInfo(
        "EXchild",
        "flow",
        parent_execution_id="EXparent",
        root_execution_id="EXparent",
        execution_depth=1,
        event=ExternalEvent(event_name=event, payload=payload),
    )


async def test_root_run_emits_and_leaves_listener_chains_out() -> None:
    run = await run_flow(flow(), registry=REG)
    assert run.result.status == "completed"
    assert started(run) == {"emit_a", "emit_b"}
    assert [(e.name, e.payload, e.emitted_by) for e in run.result.emitted] == [
        ("order.created", {"id": 7}, "emit_a"),
        ("order.cancelled", None, "emit_b"),
    ]
    assert run.result.outputs["emit_a"] == {"eventId": run.result.emitted[0].id}


async def test_child_run_runs_only_the_matching_listener_chain() -> None:
    run = await run_flow(flow(), registry=REG, info=child("order.created", {"id": 7}))
    assert run.result.status == "completed"
    assert started(run) == {"on_created", "id"}
    assert run.result.emitted == []
    assert run.result.outputs == {"id": {"value": 7, "found": True}}
    listener = next(e for e in run.of("node:completed") if e.data["node"]["id"] == "on_created")
    assert listener.data["outputs"] == {"payload": {"id": 7}, "name": "order.created"}

    run = await run_flow(flow(), registry=REG, info=child("order.cancelled", "why"))
    assert started(run) == {"on_cancelled", "bye"}
    assert run.of("node:debug-log-string")[0].data["log"] == "[info] cancelled: why"


async def test_child_run_for_an_unknown_event_runs_nothing() -> None:
    run = await run_flow(flow(), registry=REG, info=child("nobody.listens"))
    assert run.result.status == "completed"
    assert started(run) == set()


async def test_emit_errors() -> None:
    doc = flow_doc(
        [n("name", "json.parse", text=json.dumps("  ")), n("e", "event.emit")],
        [("name.value", "e.eventName")],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.error_message == "Node 'e' failed: event.emit: input 'eventName' is empty"
    run = await run_flow(flow_doc([n("e", "event.emit")]), registry=REG)  # required input missing: skipped
    assert [e.data["nodeId"] for e in run.of("node:skipped")] == ["e"]
    assert run.result.emitted == []


async def test_listener_needs_an_event_name() -> None:
    with pytest.raises(InvalidFlow, match="listener needs a non-empty 'eventName' input"):
        await run_flow(flow_doc([n("l", "event.listener")]), registry=REG)


async def test_listener_without_event_context_does_not_crash() -> None:
    class NoEvent:
        event = None

    node = EventListener(FlowNode(id="l", type="event.listener", inputs={"eventName": "x"}))
    assert await node.execute(cast(NodeContext, NoEvent())) == {"payload": None, "name": None}
