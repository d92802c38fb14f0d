"""Helpers for testing flows and nodes: tiny node types, a one-call flow runner, and a new root
execution row with its ``execution:created`` event for store-level tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chaingraph_executor.domain.events import ExecutionEvent, created_event
from chaingraph_executor.domain.execution import Execution, ExecutionInfo, ExecutionOptions, ExecutionStatus
from chaingraph_executor.domain.flow import PortType, parse_flow
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.control import ExecutionControl
from chaingraph_executor.engine.graph import compile_flow
from chaingraph_executor.engine.nodes import Input, Node, NodeRegistry, Output
from chaingraph_executor.engine.runner import EngineResult, FlowEngine


class ValueNode(Node):
    type = "test.value"
    title = "Value"
    value = Input(PortType.ANY)
    out = Output(PortType.ANY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"out": ctx.inputs["value"]}


class NumberNode(Node):
    type = "test.number"
    value = Input(PortType.NUMBER, default=0)
    out = Output(PortType.NUMBER)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"out": ctx.inputs["value"]}


class AddNode(Node):
    type = "test.add"
    a = Input(PortType.NUMBER, default=0)
    b = Input(PortType.NUMBER, default=0)
    result = Output(PortType.NUMBER)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"result": ctx.inputs["a"] + ctx.inputs["b"]}


class TextNode(Node):
    type = "test.text"
    text = Input(PortType.STRING, default="")
    out = Output(PortType.STRING)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"out": ctx.inputs["text"]}


class SleepNode(Node):
    """Sleeps ``ms`` and records when it ran in ``services['trace']`` (a list) when present."""

    type = "test.sleep"
    ms = Input(PortType.NUMBER, default=10)
    value = Input(PortType.ANY)
    out = Output(PortType.ANY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        trace = ctx.services.get("trace")
        if trace is not None:
            trace.append(("start", ctx.node_id))
        await asyncio.sleep(ctx.inputs["ms"] / 1000)
        if trace is not None:
            trace.append(("end", ctx.node_id))
        return {"out": ctx.inputs["value"]}


class FailNode(Node):
    type = "test.fail"
    message = Input(PortType.STRING, default="boom")
    value = Input(PortType.ANY)
    out = Output(PortType.ANY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        raise RuntimeError(ctx.inputs["message"])


class RequiredNode(Node):
    type = "test.required"
    value = Input(PortType.ANY, required=True)
    out = Output(PortType.ANY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"out": ctx.inputs["value"]}


class LogNode(Node):
    type = "test.log"
    message = Input(PortType.STRING, default="hello")

    async def execute(self, ctx: NodeContext) -> None:
        ctx.log(ctx.inputs["message"])


class ProduceNode(Node):
    """Writes ``count`` items to a stream, ``ms`` apart."""

    type = "test.produce"
    count = Input(PortType.NUMBER, default=3)
    ms = Input(PortType.NUMBER, default=5)
    items = Output(PortType.STREAM)

    async def execute(self, ctx: NodeContext) -> None:
        trace = ctx.services.get("trace")
        channel = ctx.open_stream("items")
        for i in range(int(ctx.inputs["count"])):
            await asyncio.sleep(ctx.inputs["ms"] / 1000)
            channel.send(i)
            if trace is not None:
                trace.append(("sent", i))


class ConsumeNode(Node):
    type = "test.consume"
    items = Input(PortType.STREAM)
    collected = Output(PortType.ARRAY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        trace = ctx.services.get("trace")
        out = []
        async for item in ctx.inputs["items"]:
            if trace is not None:
                trace.append(("received", item))
            out.append(item)
        return {"collected": out}


class EmitNode(Node):
    type = "test.emit"
    eventName = Input(PortType.STRING, default="ping")
    payload = Input(PortType.ANY)

    async def execute(self, ctx: NodeContext) -> None:
        ctx.emit_event(ctx.inputs["eventName"], ctx.inputs["payload"])


class ListenNode(Node):
    type = "test.listen"
    auto_execute = False
    event_name_port = "eventName"
    eventName = Input(PortType.STRING)
    payload = Output(PortType.ANY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"payload": ctx.event.payload if ctx.event else None}


class BranchNode(Node):
    type = "test.branch"
    condition = Input(PortType.BOOLEAN, default=True)
    then = Output(PortType.BOOLEAN)
    otherwise = Output(PortType.BOOLEAN)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        if ctx.inputs["condition"]:
            ctx.withhold("otherwise")
            return {"then": True}
        ctx.withhold("then")
        return {"otherwise": True}


TEST_NODES: tuple[type[Node], ...] = (
    ValueNode,
    NumberNode,
    AddNode,
    TextNode,
    SleepNode,
    FailNode,
    RequiredNode,
    LogNode,
    ProduceNode,
    ConsumeNode,
    EmitNode,
    ListenNode,
    BranchNode,
)


def registry_for_tests() -> NodeRegistry:
    return NodeRegistry(TEST_NODES)


def flow_doc(
    nodes: Sequence[Mapping[str, Any]], edges: Sequence[Sequence[str]] = (), flow_id: str = "flow"
) -> dict[str, Any]:
    """Build a flow document; an edge is ``("src.port", "dst.port")`` (ids ``e0``, ``e1``...)."""
    out_edges = []
    for i, (src, dst) in enumerate(edges):
        sn, sp = src.split(".", 1)
        tn, tp = dst.split(".", 1)
        out_edges.append(
            {"id": f"e{i}", "sourceNodeId": sn, "sourcePortId": sp, "targetNodeId": tn, "targetPortId": tp}
        )
    return {"id": flow_id, "nodes": list(nodes), "edges": out_edges}


def new_root_execution(
    execution_id: str, *, flow_id: str = "f", owner_id: str = "o", created_at: datetime | None = None
) -> tuple[Execution, ExecutionEvent]:
    """A root execution in ``created`` and its ``execution:created`` event, as ``create`` stores them."""
    stamp = created_at or datetime.now(UTC)
    execution = Execution(
        id=execution_id,
        flow_id=flow_id,
        owner_id=owner_id,
        status=ExecutionStatus.CREATED,
        created_at=stamp,
        updated_at=stamp,
        root_execution_id=execution_id,
    )
    created = created_event(
        execution_id=execution_id,
        flow_id=flow_id,
        flow_metadata={},
        owner_id=owner_id,
        root_execution_id=execution_id,
        parent_execution_id=None,
        execution_depth=0,
    )
    return execution, created


@dataclass
class Run:
    result: EngineResult
    events: list[ExecutionEvent]

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, type_: str) -> list[ExecutionEvent]:
        return [e for e in self.events if e.type == type_]

    def node_events(self, node_id: str) -> list[str]:
        out = []
        for e in self.events:
            d = e.data
            nid = (
                d.get("nodeId")
                or (d.get("node") or {}).get("id")
                or (d.get("serializedEdge") or {}).get("targetNodeId")
            )
            if nid == node_id and e.type != "node:status-changed":
                out.append(e.type)
        return out


async def run_flow(
    doc: Mapping[str, Any],
    *,
    registry: NodeRegistry | None = None,
    options: ExecutionOptions | Mapping[str, Any] | None = None,
    info: ExecutionInfo | None = None,
    control: ExecutionControl | None = None,
    services: Mapping[str, Any] | None = None,
) -> Run:
    compiled = compile_flow(parse_flow(doc), registry or registry_for_tests())
    opts = (
        options if isinstance(options, ExecutionOptions) or options is None else ExecutionOptions(**options)
    )
    events: list[ExecutionEvent] = []
    engine = FlowEngine(
        compiled,
        info or ExecutionInfo("EXtest", str(doc.get("id", "flow"))),
        events.append,
        options=opts,
        control=control,
        services=services,
    )
    result = await engine.run()
    return Run(result, events)


async def run_node(
    type_: str,
    inputs: Mapping[str, Any] | None = None,
    feed: Mapping[str, Any] | None = None,
    *,
    registry: NodeRegistry | None = None,
) -> Run:
    """Run one node ``n`` of ``type_`` (built-in library by default). Each ``feed`` port receives
    its value at run time through an edge from a ``json.parse`` node, as from another node."""
    nodes: list[dict[str, Any]] = [{"id": "n", "type": type_, "inputs": dict(inputs or {})}]
    edges = []
    for i, (port, value) in enumerate((feed or {}).items()):
        nodes.append({"id": f"src{i}", "type": "json.parse", "inputs": {"text": json.dumps(value)}})
        edges.append((f"src{i}.value", f"n.{port}"))
    if registry is None:
        from chaingraph_executor.engine.library import builtin_registry

        registry = builtin_registry()
    return await run_flow(flow_doc(nodes, edges), registry=registry)


async def node_error(
    type_: str, inputs: Mapping[str, Any] | None = None, feed: Mapping[str, Any] | None = None
) -> str:
    """The error message of a node that is expected to fail (see :func:`run_node`)."""
    run = await run_node(type_, inputs, feed)
    assert run.result.status == "failed", f"{type_} did not fail: {run.result}"
    return str(run.of("node:failed")[0].data["error"].message)
