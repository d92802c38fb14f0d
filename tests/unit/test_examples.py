"""Every flow in examples/ runs through the engine with the built-in nodes and gives the expected outputs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chaingraph_executor.domain.execution import ExecutionInfo, ExternalEvent
from chaingraph_executor.domain.flow import parse_flow
from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.testing import Run, run_flow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REG = builtin_registry()


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return doc


def node(doc: dict[str, Any], node_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in doc["nodes"] if n["id"] == node_id)
    return found


def started(run: Run) -> set[str]:
    return {e.data["node"]["id"] for e in run.of("node:started")}


def logs(run: Run) -> list[str]:
    return [e.data["log"] for e in run.of("node:debug-log-string")]


def test_every_example_is_a_valid_flow_and_described_in_the_readme() -> None:
    files = sorted(p.name for p in EXAMPLES.glob("*.json"))
    assert len(files) >= 7
    readme = (EXAMPLES / "README.md").read_text()
    for name in files:
        flow = parse_flow(load(name))
        assert flow.id == name.removesuffix(".json")
        assert flow.metadata.name and flow.metadata.description and flow.metadata.tags
        assert f"**{name}**" in readme


async def test_hello_world() -> None:
    run = await run_flow(load("hello-world.json"), registry=REG)
    assert run.result.status == "completed"
    assert logs(run) == ["[info] Hello, World!"]
    assert run.result.outputs == {"log": {"out": "Hello, World!", "text": "[info] Hello, World!"}}


async def test_math_diamond() -> None:
    run = await run_flow(load("math-diamond.json"), registry=REG)
    assert run.result.status == "completed"
    assert run.result.outputs == {"half": {"result": 14}}


async def test_branch_error_handler() -> None:
    run = await run_flow(load("branch-error-handler.json"), registry=REG)
    assert run.result.status == "completed"
    assert [e.data["node"]["id"] for e in run.of("node:failed")] == ["charge"]
    assert "small" not in started(run) and "charged" not in started(run)
    assert logs(run) == ["[warn] Recovered from: payment service unavailable"]
    assert run.result.outputs == {
        "report": {
            "out": "Recovered from: payment service unavailable",
            "text": "[warn] Recovered from: payment service unavailable",
        }
    }


async def test_branch_error_handler_small_amount_takes_the_else_path() -> None:
    doc = load("branch-error-handler.json")
    node(doc, "amount")["inputs"]["value"] = 5
    run = await run_flow(doc, registry=REG)
    assert run.result.status == "completed"
    assert started(run) == {"amount", "check", "branch", "small"}
    assert logs(run) == ["[info] amount too small to charge: 5"]


async def test_slow_flow_lasts_about_six_seconds_and_passes_the_value_along() -> None:
    doc = load("slow-flow.json")
    sleeps = [n for n in doc["nodes"] if n["type"] == "flow.sleep"]
    assert len(sleeps) == 6 and sum(n["inputs"]["ms"] for n in sleeps) == 6000
    for n in sleeps:  # keep the test fast: same chain, shorter sleeps
        n["inputs"]["ms"] = 2
    run = await run_flow(doc, registry=REG)
    assert run.result.status == "completed"
    order = [e.data["node"]["id"] for e in run.of("node:started")]
    assert order == ["start", *(f"sleep{i}" for i in range(1, 7)), "done"]
    assert run.result.outputs == {"done": {"out": "tick", "text": "[info] all sleeps done: tick"}}


async def test_emitter_listeners_root_run_emits_only() -> None:
    run = await run_flow(load("emitter-listeners.json"), registry=REG)
    assert run.result.status == "completed"
    assert started(run) == {"order", "emit_created", "emit_shipped", "emitted_log"}
    assert {e.name: e.payload for e in run.result.emitted} == {
        "order.created": {"id": 7, "total": 99.5},
        "order.shipped": {"id": 7, "carrier": "DHL"},
    }
    assert len(run.result.emitted) == 2


@pytest.mark.parametrize(
    ("event", "payload", "chain", "log"),
    [
        (
            "order.created",
            {"id": 7, "total": 99.5},
            {"on_created", "total", "created_log"},
            "[info] order total: 99.5",
        ),
        (
            "order.shipped",
            {"id": 7, "carrier": "DHL"},
            {"on_shipped", "shipped_text", "shipped_log"},
            "[info] Order 7 shipped with DHL",
        ),
    ],
)
async def test_emitter_listeners_child_run_runs_the_matching_chain(
    event: str, payload: Any, chain: set[str], log: str
) -> None:
    info = ExecutionInfo(
        "EXchild",
        "emitter-listeners",
        root_execution_id="EXparent",
        parent_execution_id="EXparent",
        execution_depth=1,
        event=ExternalEvent(event_name=event, payload=payload),
    )
    run = await run_flow(load("emitter-listeners.json"), registry=REG, info=info)
    assert run.result.status == "completed"
    assert started(run) == chain
    assert run.result.emitted == []
    assert logs(run) == [log]


class _Health(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        ok = self.path == "/health"
        body = json.dumps({"status": "ok"} if ok else {"error": "not found"}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def health_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_http_call(health_server: str) -> None:
    doc = load("http-call.json")
    assert node(doc, "url")["inputs"]["value"] == "http://127.0.0.1:4021/health"
    node(doc, "url")["inputs"]["value"] = f"{health_server}/health"
    run = await run_flow(doc, registry=REG)
    assert run.result.status == "completed"
    assert "error_log" not in started(run)
    assert run.result.outputs == {
        "status_log": {"out": 200, "text": "[info] status: 200"},
        "body_log": {"out": {"status": "ok"}, "text": '[info] body: {"status":"ok"}'},
    }


async def test_http_call_failure_is_logged_not_fatal(health_server: str) -> None:
    doc = load("http-call.json")
    node(doc, "url")["inputs"]["value"] = f"{health_server}/missing"
    run = await run_flow(doc, registry=REG)
    assert run.result.status == "completed"
    assert started(run) == {"url", "request", "error_log"}
    assert logs(run) == [
        f"[error] request failed: http.request: GET {health_server}/missing returned 404 Not Found: "
        '{"error": "not found"}'
    ]


async def test_streaming() -> None:
    doc = load("streaming.json")
    node(doc, "numbers")["inputs"]["intervalMs"] = 1
    run = await run_flow(doc, registry=REG)
    assert run.result.status == "completed"
    chunks = [f"chunk {i}: {i + 1}" for i in range(5)]
    assert run.result.outputs["log"]["out"] == chunks
    pos = {(e.type, (e.data.get("node") or {}).get("id")): i for i, e in enumerate(run.events)}
    assert pos[("node:started", "to_text")] < pos[("node:completed", "numbers")]
