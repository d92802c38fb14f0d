"""Stream nodes, run through the engine: a producer, a transform running alongside it, a collector."""

from __future__ import annotations

from typing import Any

from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.testing import Run, flow_doc, run_flow

REG = builtin_registry()


def n(id_: str, type_: str, **inputs: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "inputs": inputs}


def position(run: Run, type_: str, node: str) -> int:
    for i, e in enumerate(run.events):
        if e.type == type_ and (e.data.get("node") or {}).get("id") == node:
            return i
    raise AssertionError(f"no {type_} for {node}")


async def test_range_to_collect() -> None:
    run = await run_flow(
        flow_doc(
            [n("r", "stream.range", count=4, start=10), n("c", "stream.collect")], [("r.stream", "c.stream")]
        ),
        registry=REG,
    )
    assert run.result.status == "completed"
    assert run.result.outputs == {"c": {"items": [10, 11, 12, 13], "count": 4}}


async def test_transform_runs_while_the_producer_produces() -> None:
    doc = flow_doc(
        [
            n("r", "stream.range", count=4, intervalMs=5),
            n("m", "stream.map-text", template="item {{index}} = {{item}}"),
            n("c", "stream.collect"),
        ],
        [("r.stream", "m.stream"), ("m.out", "c.stream")],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.outputs == {"c": {"items": [f"item {i} = {i}" for i in range(4)], "count": 4}}
    # early resolution: the consumers start before the producer has finished
    assert position(run, "node:started", "m") < position(run, "node:completed", "r")
    assert position(run, "node:started", "c") < position(run, "node:completed", "r")


async def test_empty_stream() -> None:
    run = await run_flow(
        flow_doc([n("r", "stream.range", count=0), n("c", "stream.collect")], [("r.stream", "c.stream")]),
        registry=REG,
    )
    assert run.result.outputs == {"c": {"items": [], "count": 0}}


async def test_stream_errors() -> None:
    run = await run_flow(flow_doc([n("r", "stream.range", count=-1)]), registry=REG)
    assert (
        run.result.error_message
        == "Node 'r' failed: stream.range: count must be between 0 and 100,000, got -1"
    )
    run = await run_flow(flow_doc([n("r", "stream.range", intervalMs=-5)]), registry=REG)
    assert (
        run.result.error_message == "Node 'r' failed: stream.range: intervalMs must not be negative, got -5"
    )
    doc = flow_doc(
        [
            n("r", "stream.range", count=2),
            n("m", "stream.map-text", template="{{itm}}"),
            n("c", "stream.collect"),
        ],
        [("r.stream", "m.stream"), ("m.out", "c.stream")],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.error_message == "Node 'm' failed: stream.map-text: item 0: unknown placeholder 'itm'"


async def test_stream_input_must_be_a_stream() -> None:
    doc = flow_doc([n("p", "json.parse", text="[1, 2]"), n("c", "stream.collect")], [("p.value", "c.stream")])
    run = await run_flow(doc, registry=REG)
    assert (
        run.result.error_message
        == "Node 'c' failed: stream.collect: input 'stream' must be a stream, got array"
    )
