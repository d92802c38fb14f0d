"""``ExecutorClient.run`` (upload, create, subscribe, start, final status and outputs), the sync
client, the event model and the input overrides."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chaingraph_executor.client import (
    ErrorInfo,
    Event,
    EventType,
    ExecutionStatus,
    ExecutorClient,
    RemoteError,
    RunResult,
    SyncExecutorClient,
    TransportError,
    apply_inputs,
)

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
Live = Any  # conftest.LiveServer


def example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return doc


async def test_run_completes_with_outputs_and_every_event(client: ExecutorClient) -> None:
    seen: list[str] = []
    result = await client.run(EXAMPLES / "math-diamond.json", on_event=lambda e: seen.append(e.type))
    assert isinstance(result, RunResult) and result.ok
    assert result.status is ExecutionStatus.COMPLETED
    assert result.outputs == {"half": {"result": 14}}
    assert result.error is None and result.execution_id.startswith("EX")
    assert seen == [e.type for e in result.events]
    assert seen[0] == "execution:created" and seen[-1] == "flow:completed"
    assert [e.index for e in result.events] == list(range(-1, len(seen) - 1))


async def test_run_with_input_overrides_and_an_async_callback(live: Live) -> None:
    logs: list[str] = []

    async def on_event(event: Event) -> None:
        if event.type == EventType.NODE_DEBUG_LOG_STRING:
            assert event.log is not None
            logs.append(event.log)

    async with ExecutorClient(live.url) as client:
        result = await client.run(example("hello-world"), {"name.value": "Ada"}, on_event)
    assert result.status == "completed"
    assert logs == ["[info] Hello, Ada!"]
    assert result.outputs == {"log": {"out": "Hello, Ada!", "text": "[info] Hello, Ada!"}}


async def test_run_of_a_failing_flow_reports_the_error(client: ExecutorClient) -> None:
    doc = example("math-diamond")
    doc["nodes"].append({"id": "boom", "type": "flow.fail", "inputs": {"message": "kaput"}})
    result = await client.run(doc)
    assert result.status is ExecutionStatus.FAILED and not result.ok
    assert result.outputs == {}
    assert result.error == "Node 'boom' failed: kaput" and result.error_node_id == "boom"
    failed = [e for e in result.events if e.type == "node:failed"]
    assert failed[0].node_id == "boom" and failed[0].error == "kaput"
    assert isinstance(failed[0].data["error"], ErrorInfo)
    assert result.events[-1].error == "Node 'boom' failed: kaput"


async def test_run_rejects_bad_inputs_and_invalid_flows(client: ExecutorClient) -> None:
    with pytest.raises(ValueError, match=r"no node 'nope' \(its nodes: x, plus, times, sum, half\)"):
        await client.run(example("math-diamond"), {"nope.value": 1})
    with pytest.raises(RemoteError) as info:
        await client.run(example("math-diamond"), {"x.value": "six"})
    assert info.value.code == "BAD_REQUEST" and "expected number" in info.value.message
    with pytest.raises(RemoteError, match="unknown input port 'nope'"):
        await client.run(example("math-diamond"), {"x.nope": 1})


async def test_cancelling_run_stops_the_execution(live: Live, sleepy: Callable[..., dict[str, Any]]) -> None:
    async with ExecutorClient(live.url) as client:
        started = asyncio.Event()

        def on_event(event: Event) -> None:
            if event.type == "node:started":
                started.set()

        task = asyncio.ensure_future(client.run(sleepy("cancel-me", count=10, ms=200), on_event=on_event))
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        roots = await client.get_root_executions("cancel-me")
        assert roots[0].execution.status is ExecutionStatus.STOPPED
        assert roots[0].execution.error_message == "Client cancelled the run"


async def test_a_failing_callback_stops_the_execution_and_propagates(
    live: Live, sleepy: Callable[..., dict[str, Any]]
) -> None:
    def on_event(event: Event) -> None:
        if event.type == "node:started":
            raise RuntimeError("callback broke")

    async with ExecutorClient(live.url) as client:
        with pytest.raises(RuntimeError, match="callback broke"):
            await client.run(sleepy("broken-callback", count=10, ms=200), on_event=on_event)
        roots = await client.get_root_executions("broken-callback")
        assert roots[0].execution.status is ExecutionStatus.STOPPED


async def test_sync_client_in_a_script(live: Live, sleepy: Callable[..., dict[str, Any]]) -> None:
    """The blocking client, used from a thread (the server runs on this test's event loop)."""

    def script() -> dict[str, Any]:
        with SyncExecutorClient(live.url) as client:
            assert repr(client) == f"SyncExecutorClient('{live.url}')"
            out: dict[str, Any] = {"me": client.whoami()}
            out["result"] = client.run(EXAMPLES / "hello-world.json", {"name.value": "Sync"})
            uploaded = client.upload_flow(sleepy("sync-sleepy", count=3, ms=400))
            eid = client.create(uploaded.flow_id)
            assert client.get_execution_details(eid).status is ExecutionStatus.CREATED
            assert client.set_breakpoints(eid, ["s2"]) == ["s2"]
            client.start(eid)
            with client.subscribe_to_execution_events(eid) as events:
                for event in events:
                    if event.type == "debug:breakpoint-hit":
                        while client.get_execution_details(eid).status is not ExecutionStatus.PAUSED:
                            pass
                        client.step(eid)
                        client.resume(eid)
                out["last_seq"] = events.last_seq
                out["reconnects"] = events.reconnects
            out["tree"] = client.get_executions_tree(eid)
            out["roots"] = client.get_root_executions("sync-sleepy")
            out["flow"] = client.get_flow("sync-sleepy")
            out["flows"] = client.list_flows()
            out["raw"] = client.query("whoami")
            out["raw_mutation"] = client.mutation("uploadFlow", {"flow": example("math-diamond")})
            second = client.create("sync-sleepy")
            client.start(second)
            while client.get_execution_details(second).status is not ExecutionStatus.RUNNING:
                pass
            client.pause(second)
            client.stop(second, "bye")
            out["second"] = client.get_execution_details(second)
            client.delete_flow("math-diamond")
            try:
                client.get_flow("math-diamond")
            except RemoteError as exc:
                out["error"] = exc.code
        try:
            client.whoami()
        except RuntimeError as exc:
            out["closed"] = str(exc)
        return out

    out = await asyncio.to_thread(script)
    assert out["me"].user_id == "dev"
    assert out["result"].outputs["log"]["out"] == "Hello, Sync!"
    assert out["last_seq"] > 5 and out["reconnects"] == 0
    assert [n.level for n in out["tree"]] == [0]
    assert len(out["roots"]) == 1 and out["flow"].nodes == 5
    assert {f.flow_id for f in out["flows"].items} >= {"hello-world", "sync-sleepy"}
    assert out["raw"]["userId"] == "dev" and out["raw_mutation"]["flowId"] == "math-diamond"
    assert out["second"].status is ExecutionStatus.STOPPED and out["second"].error_message == "bye"
    assert out["error"] == "NOT_FOUND" and out["closed"] == "the client is closed"


def test_sync_client_reports_an_unreachable_server() -> None:
    with (
        SyncExecutorClient("http://127.0.0.1:9", timeout=2) as client,
        pytest.raises(TransportError, match="cannot reach"),
    ):
        client.list_flows()


def test_event_model_reads_the_common_fields() -> None:
    now = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    failed = Event(
        3, "node:failed", now, {"node": {"id": "n1"}, "error": ErrorInfo("bad"), "executionTime": 12}
    )
    assert (failed.seq, failed.node_id, failed.error, failed.execution_time_ms) == (4, "n1", "bad", 12.0)
    assert not failed.terminal and failed.log is None and failed.outputs is None and failed.reason is None
    assert failed.to_json() == {
        "index": 3,
        "type": "node:failed",
        "timestamp": "2024-01-02T03:04:05.678Z",
        "data": {"node": {"id": "n1"}, "error": {"name": "Error", "message": "bad"}, "executionTime": 12},
    }
    edge = Event.from_wire(
        {
            "index": 1,
            "type": "edge:transfer-started",
            "timestamp": "2024-01-02T03:04:05.678Z",
            "data": {"serializedEdge": {"targetNodeId": "b"}},
        }
    )
    assert edge.node_id == "b" and edge.timestamp == now
    done = Event(9, "flow:cancelled", now, {"reason": "stop", "at": now, "tags": {"x"}, "raw": b"\x01"})
    assert done.terminal and done.reason == "stop"
    assert done.to_json()["data"] == {
        "reason": "stop",
        "at": "2024-01-02T03:04:05.678Z",
        "tags": ["x"],
        "raw": "AQ==",
    }
    assert Event(0, "flow:failed", now, {"error": {"message": "m"}}).error == "m"
    assert Event(0, "node:debug-log-string", now, {"nodeId": "n", "log": "hi"}).log == "hi"


def test_apply_inputs_copies_and_handles_dotted_node_ids() -> None:
    doc = {"id": "f", "nodes": [{"id": "a"}, {"id": "a.b", "inputs": {"x": 1}}]}
    out = apply_inputs(doc, {"a.b.x": [1], "a.y": {"k": True}})
    assert out["nodes"] == [{"id": "a", "inputs": {"y": {"k": True}}}, {"id": "a.b", "inputs": {"x": [1]}}]
    assert doc["nodes"][1] == {"id": "a.b", "inputs": {"x": 1}}  # the original is untouched
    with pytest.raises(ValueError, match=r"expected nodeId\.port"):
        apply_inputs(doc, {"nodot": 1})
    with pytest.raises(ValueError, match="the port is missing"):
        apply_inputs(doc, {"a.": 1})


def test_base_url_forms() -> None:
    assert ExecutorClient("localhost:4021/").base_url == "http://localhost:4021"
    assert ExecutorClient("https://cg.example.com/api/trpc").base_url == "https://cg.example.com/api"
    with pytest.raises(ValueError, match="must start with http"):
        ExecutorClient("ftp://x")
