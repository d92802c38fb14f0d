"""Limits against abuse, and the operational endpoints, on the real app.

Every limit answers with the proper tRPC error and leaves the server healthy (``/health`` 200 and
a normal call still works): the HTTP body size (413 PAYLOAD_TOO_LARGE), the batch length
(BAD_REQUEST), the subscriptions per WebSocket connection (TOO_MANY_REQUESTS for the extra one, the
others go on) and the WebSocket message size (PAYLOAD_TOO_LARGE, then close 1009). Then ``/ready``
and the Prometheus ``/metrics``.

The app runs in-process twice over: through ``httpx.ASGITransport`` and under uvicorn on a free port
(WebSocket, streaming, and the transport's own handling of large bodies). Dev auth (the embedded
default): limits apply to everyone.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chaingraph_executor.api.app import create_app
from chaingraph_executor.bootstrap import Services, build_services
from chaingraph_executor.domain.execution import ExecutionStatus
from chaingraph_executor.serve import api_deps
from chaingraph_executor.services.auth import DEV_PRINCIPAL as P
from chaingraph_executor.settings import Settings

pytestmark = pytest.mark.timeout(60)

MAX_BODY = 4096
MAX_BATCH = 4
MAX_SUBS = 2
MAX_WS_MESSAGE = 4096


def node(id_: str, type_: str, **inputs: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "inputs": inputs}


QUICK = {
    "id": "quick",
    "nodes": [node("a", "math.add", a=1, b=2), node("b", "math.add", b=10)],
    "edges": [
        {"id": "e", "sourceNodeId": "a", "sourcePortId": "result", "targetNodeId": "b", "targetPortId": "a"}
    ],
}
SLOW = {
    "id": "slow",
    "nodes": [node("a", "math.add", a=1, b=2), node("s", "flow.sleep", ms=60_000)],
    "edges": [],
}


@dataclass
class Api:
    sv: Services
    app: Starlette
    http: httpx.AsyncClient  # in-process (ASGITransport)
    base: str  # the same app under uvicorn: http://127.0.0.1:PORT

    @property
    def ws_url(self) -> str:
        return self.base.replace("http", "ws", 1) + "/trpc"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(
        data_dir=tmp_path,
        shutdown_grace_s=0,
        control_poll_s=0.2,
        event_poll_s=0.2,
        max_request_bytes=MAX_BODY,
        max_batch_size=MAX_BATCH,
        max_subscriptions_per_connection=MAX_SUBS,
        max_ws_message_bytes=MAX_WS_MESSAGE,
    )
    async with build_services(settings, "embedded") as sv:
        await sv.flows.upload(P, QUICK)
        await sv.flows.upload(P, SLOW)
        app = create_app(api_deps(sv))
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="websockets-sansio"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield Api(sv, app, client, f"http://127.0.0.1:{port}")
        finally:
            await app.state.trpc.close()
            server.should_exit = True
            await task
            for item in await sv.backend.executions.list_roots("slow", limit=100, after=None, after_id=None):
                if not item.execution.status.terminal:
                    await sv.executions.stop(P, item.execution.id, "test cleanup")


def error_of(body: Any) -> dict[str, Any]:
    """The (SuperJSON-wrapped) error shape of a response body or a WebSocket frame."""
    shape: dict[str, Any] = body["error"]["json"]
    assert set(shape) == {"message", "code", "data"}, shape
    return shape


async def assert_healthy(api: Api) -> None:
    """``/health`` answers and a normal call still works, in-process and over the network."""
    assert (await api.http.get("/health")).json()["status"] == "healthy"
    ok = await api.http.get("/trpc/whoami")
    assert ok.status_code == 200 and ok.json()["result"]["data"]["json"]["userId"] == "dev"
    async with httpx.AsyncClient(base_url=api.base, timeout=10) as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/trpc/whoami")).status_code == 200


async def execution_count(api: Api) -> int:
    return sum((await api.sv.backend.executions.count_by_status()).values())


def big_flow(size: int) -> dict[str, Any]:
    return {**QUICK, "metadata": {"name": "big", "description": "x" * size}}


# ------------------------------------------------------------------------------------ HTTP body
async def test_oversized_body_is_payload_too_large(api: Api) -> None:
    before = await execution_count(api)
    body = json.dumps({"json": {"flow": big_flow(MAX_BODY)}})
    assert len(body) > MAX_BODY
    response = await api.http.post(
        "/trpc/uploadFlow", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    shape = error_of(response.json())
    assert shape["data"]["code"] == "PAYLOAD_TOO_LARGE" and shape["data"]["httpStatus"] == 413
    assert str(MAX_BODY) in shape["message"]
    assert shape["code"] == -32013

    # without a content-length (chunked): counted while reading
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000].encode()

    chunked = await api.http.post(
        "/trpc/uploadFlow", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413 and error_of(chunked.json())["data"]["code"] == "PAYLOAD_TOO_LARGE"

    # a batch whose body is too large: one request-level error, nothing runs
    inputs = {str(i): {"json": {"flowId": "quick", "integration": {"pad": "y" * 1500}}} for i in range(3)}
    batch = await api.http.post(
        "/trpc/create,create,create?batch=1",
        content=json.dumps(inputs),
        headers={"content-type": "application/json"},
    )
    assert batch.status_code == 413 and error_of(batch.json())["data"]["code"] == "PAYLOAD_TOO_LARGE"
    assert await execution_count(api) == before

    # just under the limit is fine
    fits = json.dumps({"json": {"flow": big_flow(MAX_BODY - 1000)}})
    assert len(fits) < MAX_BODY
    ok = await api.http.post("/trpc/uploadFlow", content=fits, headers={"content-type": "application/json"})
    assert ok.status_code == 200 and ok.json()["result"]["data"]["json"]["flowId"] == "quick"
    await assert_healthy(api)


async def test_oversized_body_over_the_network(api: Api) -> None:
    """Under uvicorn, a body far over the limit (declared and chunked) gets 413 and the server goes on."""
    huge = json.dumps({"json": {"flow": big_flow(200_000)}}).encode()
    async with httpx.AsyncClient(base_url=api.base, timeout=10) as client:
        declared = await client.post(
            "/trpc/uploadFlow", content=huge, headers={"content-type": "application/json"}
        )
        assert declared.status_code == 413
        assert error_of(declared.json())["data"]["code"] == "PAYLOAD_TOO_LARGE"

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(huge), 8192):
                yield huge[i : i + 8192]

        try:
            streamed = await client.post(
                "/trpc/uploadFlow", content=chunks(), headers={"content-type": "application/json"}
            )
        except httpx.TransportError:
            pass  # the server may answer and close before the client finished sending: allowed
        else:
            assert streamed.status_code == 413
    stored = await api.sv.backend.flows.get("quick")
    assert stored is not None and stored.version == 1, "nothing was stored"
    await assert_healthy(api)


# ------------------------------------------------------------------------------------ batch length
async def test_batch_too_long(api: Api) -> None:
    at_limit = await api.http.get("/trpc/" + ",".join(["whoami"] * MAX_BATCH), params={"batch": "1"})
    assert at_limit.status_code == 200 and len(at_limit.json()) == MAX_BATCH

    over = ",".join(["whoami"] * (MAX_BATCH + 1))
    for headers in ({}, {"trpc-accept": "application/jsonl"}):
        response = await api.http.get(f"/trpc/{over}", params={"batch": "1"}, headers=headers)
        assert response.status_code == 400, headers
        shape = error_of(response.json())
        assert shape["data"]["code"] == "BAD_REQUEST"
        assert "Batch call exceeds maximum size" in shape["message"]

    # mutations: nothing of a refused batch runs
    before = await execution_count(api)
    inputs = {str(i): {"json": {"flowId": "quick"}} for i in range(MAX_BATCH + 1)}
    response = await api.http.post(
        "/trpc/" + ",".join(["create"] * (MAX_BATCH + 1)),
        params={"batch": "1"},
        content=json.dumps(inputs),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400 and error_of(response.json())["data"]["code"] == "BAD_REQUEST"
    assert await execution_count(api) == before
    await assert_healthy(api)


# ------------------------------------------------------------------------------------ WebSocket
async def recv_json(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        frame: dict[str, Any] = json.loads(await ws.recv())
        return frame


async def recv_for(ws: ClientConnection, rid: int, timeout: float = 10) -> dict[str, Any]:
    """The next frame of request ``rid`` (frames of other requests are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await recv_json(ws, timeout)
            if frame.get("id") == rid:
                return frame


def subscribe_frame(rid: int, execution_id: str) -> str:
    params = {"path": "subscribeToExecutionEvents", "input": {"json": {"executionId": execution_id}}}
    return json.dumps({"id": rid, "method": "subscription", "params": params})


def query_frame(rid: int, path: str = "whoami") -> str:
    return json.dumps({"id": rid, "method": "query", "params": {"path": path}})


async def test_too_many_subscriptions_on_one_connection(api: Api) -> None:
    # created executions: their streams stay open (they wait for events) until they end
    eids = [await api.sv.executions.create(P, "quick") for _ in range(MAX_SUBS + 1)]
    async with connect(api.ws_url) as ws:
        for rid in range(1, MAX_SUBS + 1):
            await ws.send(subscribe_frame(rid, eids[rid - 1]))
            assert (await recv_for(ws, rid))["result"]["type"] == "started"
        await ws.send(subscribe_frame(99, eids[-1]))
        refused = error_of(await recv_for(ws, 99))
        assert refused["data"]["code"] == "TOO_MANY_REQUESTS" and refused["data"]["httpStatus"] == 429
        assert str(MAX_SUBS) in refused["message"]

        # the connection and its subscriptions go on: a query, then the first stream to its end
        await ws.send(query_frame(7))
        assert (await recv_for(ws, 7))["result"]["data"]["json"]["userId"] == "dev"
        await api.sv.executions.start(P, eids[0])
        types: list[str] = []
        while True:
            frame = await recv_for(ws, 1, timeout=20)
            if frame["result"]["type"] == "stopped":
                break
            types += [e["type"] for e in frame["result"]["data"]["json"]["data"]]
        assert types[0] == "execution:created" and types[-1] == "flow:completed"

        # a freed slot can be used again; stopping one frees one too
        await ws.send(subscribe_frame(100, eids[-1]))
        assert (await recv_for(ws, 100))["result"]["type"] == "started"
        await ws.send(json.dumps({"id": 2, "method": "subscription.stop"}))
        assert (await recv_for(ws, 2))["result"]["type"] == "stopped"
        await ws.send(subscribe_frame(101, eids[1]))
        assert (await recv_for(ws, 101))["result"]["type"] == "started"
        await ws.send(subscribe_frame(102, eids[1]))
        assert error_of(await recv_for(ws, 102))["data"]["code"] == "TOO_MANY_REQUESTS"
    await assert_healthy(api)


async def test_websocket_batch_frame_too_long(api: Api) -> None:
    async with connect(api.ws_url) as ws:
        await ws.send("[" + ",".join(query_frame(i) for i in range(1, MAX_BATCH + 2)) + "]")
        answers = [await recv_json(ws) for _ in range(MAX_BATCH + 1)]
        assert sorted(a["id"] for a in answers) == list(range(1, MAX_BATCH + 2))
        for answer in answers:
            shape = error_of(answer)
            assert (
                shape["data"]["code"] == "BAD_REQUEST"
                and "Batch call exceeds maximum size" in shape["message"]
            )
        # a batch at the limit runs
        await ws.send("[" + ",".join(query_frame(i) for i in range(10, 10 + MAX_BATCH)) + "]")
        answers = [await recv_json(ws) for _ in range(MAX_BATCH)]
        assert all(a["result"]["data"]["json"]["userId"] == "dev" for a in answers)
    await assert_healthy(api)


async def test_oversized_websocket_message(api: Api) -> None:
    eid = await api.sv.executions.create(P, "quick")
    async with connect(api.ws_url) as ws:
        await ws.send(subscribe_frame(1, eid))
        assert (await recv_for(ws, 1))["result"]["type"] == "started"
        padding = "x" * MAX_WS_MESSAGE
        await ws.send(
            json.dumps({"id": 2, "method": "query", "params": {"path": "whoami", "input": padding}})
        )
        frame = await recv_json(ws)
        assert frame["id"] is None
        shape = error_of(frame)
        assert shape["data"]["code"] == "PAYLOAD_TOO_LARGE" and str(MAX_WS_MESSAGE) in shape["message"]
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
        assert ws.close_code == 1009
    # the subscription of the closed socket is gone; a new connection works
    async with asyncio.timeout(10):
        while api.app.state.trpc.open_sockets:
            await asyncio.sleep(0.02)
    async with connect(api.ws_url) as ws:
        await ws.send(query_frame(1))
        assert (await recv_for(ws, 1))["result"]["data"]["json"]["userId"] == "dev"
        await ws.send(subscribe_frame(2, eid))
        assert (await recv_for(ws, 2))["result"]["type"] == "started"
    await assert_healthy(api)


# ------------------------------------------------------------------------------------ /ready, /metrics
async def test_ready(api: Api) -> None:
    response = await api.http.get("/ready")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "ready" and body["database_ok"] is True and body["schema_ok"] is True
    assert body["schema"] == body["head"] and body["head"]


def metrics(text: str) -> dict[str, float]:
    """``name{labels}`` -> value of every sample of a Prometheus text exposition."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


async def scrape(api: Api) -> dict[str, float]:
    response = await api.http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return metrics(response.text)


async def wait_status(api: Api, eid: str, status: ExecutionStatus) -> None:
    async with asyncio.timeout(20):
        while (ex := await api.sv.backend.executions.get(eid)) is None or ex.status is not status:
            await asyncio.sleep(0.02)


async def test_metrics(api: Api) -> None:
    sv = api.sv
    done = await sv.executions.create(P, "quick")
    await sv.executions.start(P, done)
    await wait_status(api, done, ExecutionStatus.COMPLETED)
    await sv.executions.create(P, "quick")  # stays created
    running = await sv.executions.create(P, "slow")
    await sv.executions.start(P, running)
    await wait_status(api, running, ExecutionStatus.RUNNING)
    stopped = await sv.executions.create(P, "quick")
    await sv.executions.stop(P, stopped)

    m = await scrape(api)
    by_status = {s.value: m[f'chaingraph_executions{{status="{s.value}"}}'] for s in ExecutionStatus}
    assert by_status == {
        "created": 1,
        "running": 1,
        "paused": 0,
        "completed": 1,
        "failed": 0,
        "stopped": 1,
    }
    assert m["chaingraph_queue_depth"] == await sv.dispatcher.queue_depth() >= 0
    assert "chaingraph_event_lag_seconds_count" in m
    assert m["chaingraph_active_subscriptions"] == 0
    assert m["chaingraph_websockets"] == 0

    # an open SSE subscription (under uvicorn) and an open WebSocket are counted, then released
    url = f"{api.base}/trpc/subscribeToExecutionEvents"
    params = {"input": json.dumps({"json": {"executionId": running}})}
    async with httpx.AsyncClient(timeout=10) as client, client.stream("GET", url, params=params) as sse:
        lines = sse.aiter_lines()
        async with asyncio.timeout(10):
            while await anext(lines) != "event: connected":
                pass
        async with connect(api.ws_url):
            m = await scrape(api)
            assert m["chaingraph_active_subscriptions"] == 1
            assert m["chaingraph_websockets"] == 1
    async with asyncio.timeout(10):
        while (m := await scrape(api))["chaingraph_active_subscriptions"] or m["chaingraph_websockets"]:
            await asyncio.sleep(0.05)
    text = (await api.http.get("/metrics")).text
    for name in ("chaingraph_executions", "chaingraph_active_subscriptions", "chaingraph_queue_depth"):
        assert re.search(rf"^# TYPE {name} gauge$", text, re.MULTILINE), name


async def test_metrics_count_websocket_subscriptions(api: Api) -> None:
    eid = await api.sv.executions.create(P, "quick")
    async with connect(api.ws_url) as ws:
        for rid in (1, 2):
            await ws.send(subscribe_frame(rid, eid))
            assert (await recv_for(ws, rid))["result"]["type"] == "started"
        m = await scrape(api)
        assert m["chaingraph_websockets"] == 1
        assert m["chaingraph_active_subscriptions"] == 2


async def test_metrics_event_lag(api: Api) -> None:
    # The lag histogram counts delivered batches: a subscriber that reads an old execution's
    # events late sees a lag of at least that age.
    done = await api.sv.executions.create(P, "quick")
    await api.sv.executions.start(P, done)
    await wait_status(api, done, ExecutionStatus.COMPLETED)
    await asyncio.sleep(1.1)
    before = (await scrape(api)).get("chaingraph_event_lag_seconds_count", 0.0)
    url = "/trpc/subscribeToExecutionEvents"
    params = {"input": json.dumps({"json": {"executionId": done}})}
    response = await api.http.get(url, params=params)
    assert response.status_code == 200 and "event: return" in response.text
    m = await scrape(api)
    assert m["chaingraph_event_lag_seconds_count"] > before
    assert m['chaingraph_event_lag_seconds_bucket{le="1.0"}'] < m["chaingraph_event_lag_seconds_count"]
