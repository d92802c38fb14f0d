"""Engine rules: ordering, concurrency, errors, timeouts, abort, pause/step/breakpoints, listeners, streams."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chaingraph_executor.domain.execution import ExecutionInfo, ExternalEvent
from chaingraph_executor.engine.control import ExecutionControl
from chaingraph_executor.testing import flow_doc, run_flow


def n(id_: str, type_: str, **inputs: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "inputs": inputs}


async def test_diamond_computes_and_orders_events() -> None:
    doc = flow_doc(
        [
            n("a", "test.number", value=2),
            n("b", "test.add", b=1),
            n("c", "test.add", b=10),
            n("d", "test.add"),
        ],
        [("a.out", "b.a"), ("a.out", "c.a"), ("b.result", "d.a"), ("c.result", "d.b")],
    )
    run = await run_flow(doc)
    assert run.result.status == "completed"
    assert run.result.outputs == {"d": {"result": 15}}
    types = run.types()
    assert types[0] == "flow:started" and types[-1] == "flow:completed"
    assert [e.index for e in run.events] == list(range(len(run.events)))  # dense indices
    # d starts only after b and c completed
    pos = {(e.type, (e.data.get("node") or {}).get("id")): i for i, e in enumerate(run.events)}
    assert pos[("node:started", "d")] > pos[("node:completed", "b")]
    assert pos[("node:started", "d")] > pos[("node:completed", "c")]
    assert run.node_events("d") == [
        "node:started",
        "edge:transfer-started",
        "edge:transfer-completed",
        "edge:transfer-started",
        "edge:transfer-completed",
        "node:completed",
    ]
    completed = run.of("node:completed")[-1]
    assert completed.data["outputs"] == {"result": 15}


async def test_status_changed_events_accompany_node_events() -> None:
    run = await run_flow(flow_doc([n("a", "test.number", value=1)]))
    changes = [(e.data["oldStatus"], e.data["newStatus"]) for e in run.of("node:status-changed")]
    assert changes == [("idle", "executing"), ("executing", "completed")]


async def test_max_concurrency_limits_parallel_nodes() -> None:
    nodes = [n(f"s{i}", "test.sleep", ms=20) for i in range(6)]
    trace: list[tuple[str, str]] = []
    run = await run_flow(
        flow_doc(nodes), options={"execution": {"maxConcurrency": 2}}, services={"trace": trace}
    )
    assert run.result.status == "completed"
    running = peak = 0
    for kind, _ in trace:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak == 2


async def test_independent_nodes_run_in_parallel_by_default() -> None:
    trace: list[tuple[str, str]] = []
    await run_flow(flow_doc([n(f"s{i}", "test.sleep", ms=20) for i in range(4)]), services={"trace": trace})
    assert [k for k, _ in trace[:4]] == ["start"] * 4


async def test_handled_error_runs_error_branch_and_completes() -> None:
    doc = flow_doc(
        [n("f", "test.fail", message="bad input"), n("after", "test.value"), n("handler", "test.text")],
        [("f.out", "after.value"), ("f.__errorMessage", "handler.text")],
    )
    run = await run_flow(doc)
    assert run.result.status == "completed"
    failed = run.of("node:failed")[0]
    assert failed.data["error"].message == "bad input"
    assert "after" not in {(e.data.get("node") or {}).get("id") for e in run.of("node:started")}
    assert run.result.outputs["handler"] == {"out": "bad input"}


async def test_unhandled_failure_fails_the_run_after_the_rest_finished() -> None:
    doc = flow_doc([n("f", "test.fail", message="kaput"), n("slow", "test.sleep", ms=30)])
    run = await run_flow(doc)
    assert run.result.status == "failed"
    assert run.result.error_node_id == "f"
    assert "kaput" in (run.result.error_message or "")
    types = run.types()
    assert types[-1] == "flow:failed"
    assert types.index("flow:failed") > max(i for i, e in enumerate(run.events) if e.type == "node:completed")
    assert run.events[-1].data["errorNodeId"] == "f"


async def test_required_input_without_value_skips_node() -> None:
    doc = flow_doc([n("v", "test.value"), n("r", "test.required")], [("v.out", "r.value")])
    run = await run_flow(doc)
    assert run.of("edge:transfer-failed")
    assert run.of("node:skipped")[0].data == {"nodeId": "r", "reason": "edge transfer failed"}
    assert run.result.status == "completed"


async def test_execute_port_false_skips_node_and_its_downstream() -> None:
    doc = flow_doc(
        [n("b", "test.value", value=False), n("x", "test.number", value=1), n("y", "test.add")],
        [("b.out", "x.__execute"), ("x.out", "y.a")],
    )
    run = await run_flow(doc)
    assert run.of("node:skipped")[0].data["nodeId"] == "x"
    assert "y" not in [(e.data.get("node") or {}).get("id") for e in run.of("node:started")]


async def test_withheld_output_does_not_run_its_consumers() -> None:
    doc = flow_doc(
        [
            n("br", "test.branch", condition=False),
            n("yes", "test.number", value=1),
            n("no", "test.number", value=2),
        ],
        [("br.then", "yes.__execute"), ("br.otherwise", "no.__execute")],
    )
    run = await run_flow(doc)
    started = {(e.data.get("node") or {}).get("id") for e in run.of("node:started")}
    assert started == {"br", "no"}


async def test_first_resolved_source_wins_for_a_port() -> None:
    doc = flow_doc(
        [
            n("fast", "test.sleep", ms=1, value="fast"),
            n("slow", "test.sleep", ms=40, value="slow"),
            n("t", "test.value"),
        ],
        [("fast.out", "t.value"), ("slow.out", "t.value")],
    )
    run = await run_flow(doc)
    assert run.result.outputs["t"] == {"out": "fast"}


async def test_node_timeout_cancels_the_node() -> None:
    doc = flow_doc([n("s", "test.sleep", ms=5000)])
    run = await asyncio.wait_for(run_flow(doc, options={"execution": {"nodeTimeoutMs": 30}}), 2)
    assert run.result.status == "failed"
    assert "timed out after 30 ms" in run.of("node:failed")[0].data["error"].message


async def test_flow_timeout_cancels_the_run() -> None:
    doc = flow_doc([n("s", "test.sleep", ms=5000)])
    run = await asyncio.wait_for(run_flow(doc, options={"execution": {"flowTimeoutMs": 40}}), 2)
    assert run.result.status == "failed"
    assert run.types()[-1] == "flow:failed"
    assert "timed out after 40 ms" in run.events[-1].data["error"].message


async def test_time_paused_does_not_count_towards_flow_timeout() -> None:
    control = ExecutionControl()
    doc = flow_doc([n("a", "test.sleep", ms=10), n("b", "test.sleep", ms=10)], [("a.out", "b.value")])
    task = asyncio.create_task(run_flow(doc, control=control, options={"execution": {"flowTimeoutMs": 150}}))
    control.pause()
    await asyncio.sleep(0.3)  # longer than the flow timeout, but paused
    control.resume()
    run = await asyncio.wait_for(task, 2)
    assert run.result.status == "completed"


async def test_stop_cancels_in_flight_nodes_at_once() -> None:
    control = ExecutionControl()
    doc = flow_doc([n("s", "test.sleep", ms=5000)])
    task = asyncio.create_task(run_flow(doc, control=control))
    await asyncio.sleep(0.02)
    control.stop("enough")
    run = await asyncio.wait_for(task, 1)
    assert run.result.status == "stopped"
    assert run.types()[-1] == "flow:cancelled"
    assert run.events[-1].data["reason"] == "enough"


async def test_pause_waits_for_in_flight_then_starts_nothing_until_resume() -> None:
    control = ExecutionControl()
    doc = flow_doc(
        [n("a", "test.sleep", ms=30), n("b", "test.sleep", ms=1), n("c", "test.sleep", ms=1)],
        [("a.out", "b.value"), ("b.out", "c.value")],
    )
    events: list[str] = []
    task = asyncio.create_task(run_flow(doc, control=control))
    await asyncio.sleep(0.005)
    control.pause("hold on")
    await asyncio.sleep(0.15)
    assert not task.done()
    control.resume()
    run = await asyncio.wait_for(task, 2)
    events = run.types()
    paused = events.index("flow:paused")
    resumed = events.index("flow:resumed")
    assert events.index("node:completed") < paused  # a finished before the pause took effect
    assert not [t for t in events[paused:resumed] if t == "node:started"]
    assert run.events[paused].data["reason"] == "hold on"
    assert run.result.status == "completed"


async def test_step_runs_exactly_the_ready_nodes_then_pauses_again() -> None:
    control = ExecutionControl()
    doc = flow_doc(
        [n("a", "test.number", value=1), n("b", "test.add"), n("c", "test.add")],
        [("a.out", "b.a"), ("b.result", "c.a")],
    )
    control.pause()
    task = asyncio.create_task(run_flow(doc, control=control))
    await asyncio.sleep(0.01)
    started: list[list[str]] = []
    for _ in range(3):
        control.step()
        await asyncio.sleep(0.01)
    run = await asyncio.wait_for(task, 1)
    order = [
        (e.type, (e.data.get("node") or {}).get("id"))
        for e in run.events
        if e.type in ("node:started", "flow:paused")
    ]
    assert order == [
        ("flow:paused", None),
        ("node:started", "a"),
        ("flow:paused", None),
        ("node:started", "b"),
        ("flow:paused", None),
        ("node:started", "c"),
    ]
    assert run.result.status == "completed"
    del started


async def test_breakpoint_pauses_before_the_node() -> None:
    control = ExecutionControl()
    doc = flow_doc([n("a", "test.number", value=1), n("b", "test.add")], [("a.out", "b.a")])
    task = asyncio.create_task(run_flow(doc, control=control, options={"breakpoints": ["b"]}))
    await asyncio.sleep(0.02)
    assert not task.done()
    control.resume()
    run = await asyncio.wait_for(task, 1)
    types = run.types()
    hit = types.index("debug:breakpoint-hit")
    assert run.events[hit].data["node"]["id"] == "b"
    assert hit < types.index("flow:paused") < types.index("flow:resumed")
    b_started = [
        i for i, e in enumerate(run.events) if e.type == "node:started" and e.data["node"]["id"] == "b"
    ]
    assert b_started[0] > types.index("flow:resumed")
    assert types.count("debug:breakpoint-hit") == 1


async def test_breakpoints_set_while_running_apply() -> None:
    control = ExecutionControl()
    doc = flow_doc([n("a", "test.sleep", ms=30), n("b", "test.sleep", ms=1)], [("a.out", "b.value")])
    task = asyncio.create_task(run_flow(doc, control=control))
    await asyncio.sleep(0.005)
    control.set_breakpoints(["b"])
    await asyncio.sleep(0.08)
    assert not task.done()
    control.resume()
    run = await asyncio.wait_for(task, 1)
    assert "debug:breakpoint-hit" in run.types()


async def test_debug_log_events() -> None:
    run = await run_flow(flow_doc([n("l", "test.log", message="hi there")]))
    assert run.of("node:debug-log-string")[0].data == {"nodeId": "l", "log": "hi there"}


async def test_listeners_do_not_run_without_their_event() -> None:
    doc = flow_doc(
        [
            n("e", "test.emit", eventName="ping", payload={"x": 1}),
            n("l", "test.listen", eventName="ping"),
            n("after", "test.value"),
            n("other", "test.listen", eventName="pong"),
        ],
        [("l.payload", "after.value")],
    )
    run = await run_flow(doc)
    started = {(e.data.get("node") or {}).get("id") for e in run.of("node:started")}
    assert started == {"e"}
    assert [(ev.name, ev.payload) for ev in run.result.emitted] == [("ping", {"x": 1})]
    assert run.result.emitted[0].id == "e#1" and run.result.emitted[0].emitted_by == "e"


async def test_child_run_executes_only_the_matching_listener_chain() -> None:
    doc = flow_doc(
        [
            n("e", "test.emit", eventName="ping"),
            n("l", "test.listen", eventName="ping"),
            n("after", "test.value"),
            n("other", "test.listen", eventName="pong"),
            n("other_after", "test.value"),
        ],
        [("l.payload", "after.value"), ("other.payload", "other_after.value")],
    )
    info = ExecutionInfo(
        "EXchild", "flow", parent_execution_id="EXp", event=ExternalEvent(event_name="ping", payload=7)
    )
    run = await run_flow(doc, info=info)
    started = {(e.data.get("node") or {}).get("id") for e in run.of("node:started")}
    assert started == {"l", "after"}
    assert run.result.outputs == {"after": {"out": 7}}


async def test_streaming_consumer_runs_while_producer_produces() -> None:
    trace: list[tuple[str, Any]] = []
    doc = flow_doc([n("p", "test.produce", count=4, ms=10), n("c", "test.consume")], [("p.items", "c.items")])
    run = await run_flow(doc, services={"trace": trace})
    assert run.result.outputs["c"] == {"collected": [0, 1, 2, 3]}
    # the consumer received the first item before the producer sent the last one
    assert trace.index(("received", 0)) < trace.index(("sent", 3))


async def test_indices_continue_from_start_index() -> None:
    from chaingraph_executor.domain.flow import parse_flow
    from chaingraph_executor.engine.graph import compile_flow
    from chaingraph_executor.engine.runner import FlowEngine
    from chaingraph_executor.testing import registry_for_tests

    events: list[Any] = []
    compiled = compile_flow(parse_flow(flow_doc([n("a", "test.number")])), registry_for_tests())
    engine = FlowEngine(compiled, ExecutionInfo("EX", "f", attempt=2), events.append, start_index=10)
    result = await engine.run()
    assert [e.index for e in events] == list(range(10, 10 + len(events)))
    assert result.next_index == 10 + len(events)
    assert events[0].data["attempt"] == 2 and events[0].data["restarted"] is True


@pytest.mark.parametrize("count", [0])
async def test_empty_flow_completes(count: int) -> None:
    run = await run_flow({"id": "empty", "nodes": [], "edges": []})
    assert run.types() == ["flow:started", "flow:completed"]


async def test_secret_outputs_are_masked_in_events() -> None:
    from chaingraph_executor.engine.library import builtin_registry

    doc = flow_doc([n("s", "value.secret", value="hunter2")])
    run = await run_flow(doc, registry=builtin_registry())
    assert run.of("node:completed")[0].data["outputs"] == {"out": "***"}
    assert run.result.outputs["s"]["out"] == "hunter2"  # the value itself still flows
