"""WebSocket transport over a real uvicorn: the raw probes of the vectors replayed like the
harness does, plus limits, keep-alive, context creation, reconnect broadcast and shutdown."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chaingraph_executor.api.trpc import KeepAlive, Limits, RequestInfo, TRPCUvicornServer, trpc_routes
from chaingraph_executor.trpc import Router, TRPCError, tracked

VECTORS = Path(__file__).resolve().parents[2] / "fixtures" / "trpc_vectors"
RAW_WS = sorted(p.stem for p in VECTORS.glob("raw-ws-*.json"))


async def run_probe(url: str, frames: list[str], wait_ms: int) -> list[str]:
    """What capture.mjs does for a raw WS probe: send frames 30 ms apart, wait, close."""
    received: list[str] = []
    we_closed = False
    async with connect(url) as ws:

        async def reader() -> None:
            try:
                async for message in ws:
                    received.append(message if isinstance(message, str) else message.decode())
            except ConnectionClosed:
                pass
            if not we_closed:
                code = ws.close_code if ws.close_code is not None else 1005
                received.append(f"(connection closed by server, code {code})")

        task = asyncio.ensure_future(reader())
        for frame in frames:
            if frame.startswith("__sleep:"):
                await asyncio.sleep(int(frame[8:]) / 1000)
                continue
            if task.done():
                break
            await ws.send(frame)
            await asyncio.sleep(0.03)
        await asyncio.sleep(wait_ms / 1000)
        if not task.done():
            we_closed = True
            await ws.close()
        await asyncio.wait_for(task, 5)
    return received


PROBES = {
    "raw-ws-duplicate-subscription-id": 600,
    "raw-ws-lastEventId-param": 300,
    "raw-ws-subscription-stop-then-stopped": 300,
}


def _sent_frames(vec: dict[str, Any]) -> list[str]:
    """The probe's frames with its sleeps (the vector keeps only what was sent)."""
    if vec["scenario"] == "raw-ws-subscription-stop-then-stopped":
        return [vec["sent"][0], "__sleep:130", vec["sent"][1]]
    return list(vec["sent"])


def _probe_url(vec: dict[str, Any]) -> str:
    url = next(e["url"] for e in vec["wire"] if e["kind"] == "ws-open")
    return url


@pytest.mark.parametrize("name", RAW_WS)
async def test_raw_ws_probe(
    name: str, live_server: Callable[..., Any], spec_app: ModuleType, harness: ModuleType, vector: Any
) -> None:
    vec = vector(name)
    async with live_server(spec_app.build_app()) as host:
        observed = await run_probe(f"ws://{host}{_probe_url(vec)}", _sent_frames(vec), PROBES.get(name, 300))
    actual = harness.decode_raw_ws({"observed": observed})
    if name == "raw-ws-missing-input-superjson":
        # deliberately lenient: a missing input is "undefined" (the reference fails the frame)
        assert actual == [
            json.dumps(
                {"id": 1, "result": {"data": {"connectionParams": None}, "type": "data"}}, sort_keys=True
            )
        ]
        return
    assert actual == harness.decode_raw_ws(vec)


# ------------------------------------------------------------------------------------ own router
def ws_app(**options: Any) -> tuple[Starlette, Any, dict[str, Any]]:
    router = Router()
    state: dict[str, Any] = {"closed": 0, "started": 0}

    @router.query("hello")
    async def hello(ctx: Any, input: Any) -> Any:
        return {"hello": ctx["who"]}

    @router.query("stream")
    async def stream(ctx: Any, input: Any) -> AsyncIterator[int]:
        yield 1

    @router.subscription("forever")
    async def forever(ctx: Any, input: Any) -> AsyncIterator[Any]:
        state["started"] += 1
        try:
            n = 0
            while True:
                n += 1
                yield tracked(str(n), {"n": n})
                await asyncio.sleep(0.01)
        finally:
            state["closed"] += 1

    def create_context(info: RequestInfo) -> dict[str, Any]:
        params = info.connection_params or {}
        if params.get("token") == "bad":
            raise TRPCError("UNAUTHORIZED", "bad token")
        return {"who": params.get("token", "anonymous"), "transport": info.transport}

    routes, server = trpc_routes(router, prefix="/trpc", create_context=create_context, **options)
    return Starlette(routes=routes), server, state


def request(msg_id: Any, method: str, path: str, **params: Any) -> str:
    return json.dumps(
        {"id": msg_id, "method": method, "params": {"path": path, "input": {"json": None}, **params}}
    )


async def recv_json(ws: ClientConnection, timeout: float = 2) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until_closed(ws: ClientConnection) -> list[Any]:
    frames = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 3)))
    except ConnectionClosed:
        return frames


async def wait_for(predicate: Callable[[], bool]) -> None:
    for _ in range(300):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_message_size_limit_closes_with_1009(live_server: Callable[..., Any]) -> None:
    app, _, _ = ws_app(limits=Limits(max_ws_message_bytes=200))
    async with live_server(app) as host, connect(f"ws://{host}/trpc") as ws:
        await ws.send(request(1, "query", "hello"))
        assert (await recv_json(ws))["result"]["data"] == {"json": {"hello": "anonymous"}}
        await ws.send(
            json.dumps({"id": 2, "method": "query", "params": {"path": "hello", "input": "x" * 300}})
        )
        frames = await until_closed(ws)
        assert frames[0]["id"] is None
        assert frames[0]["error"]["json"]["data"] == {"code": "PAYLOAD_TOO_LARGE", "httpStatus": 413}
        assert ws.close_code == 1009


async def test_subscription_and_batch_limits(live_server: Callable[..., Any]) -> None:
    app, _, state = ws_app(limits=Limits(max_ws_subscriptions=2, max_batch_size=3))
    async with live_server(app) as host, connect(f"ws://{host}/trpc") as ws:
        for msg_id in (1, 2, 3):
            await ws.send(request(msg_id, "subscription", "forever"))
        errors = []
        while not errors:
            frame = await recv_json(ws)
            if "error" in frame:
                errors.append(frame)
        assert errors[0]["id"] == 3
        assert errors[0]["error"]["json"]["data"] == {
            "code": "TOO_MANY_REQUESTS",
            "httpStatus": 429,
            "path": "forever",
        }
        await ws.send(json.dumps([json.loads(request(i, "query", "hello")) for i in (10, 11, 12, 13)]))
        answers = set()
        while len(answers) < 4:
            frame = await recv_json(ws)
            if frame["id"] in (10, 11, 12, 13):
                assert frame["error"]["json"]["message"] == "Batch call exceeds maximum size"
                answers.add(frame["id"])
        assert state["started"] == 2
    await wait_for(lambda: state["closed"] == 2)  # the socket closed: both subscriptions stopped


async def test_stop_cancels_and_queries_cannot_stream(live_server: Callable[..., Any]) -> None:
    app, _, state = ws_app()
    async with live_server(app) as host, connect(f"ws://{host}/trpc") as ws:
        await ws.send(request(1, "subscription", "forever"))
        assert await recv_json(ws) == {"id": 1, "result": {"type": "started"}}
        frame = await recv_json(ws)
        assert frame["result"]["id"] == "1"
        assert frame["result"]["data"] == {"json": {"id": "1", "data": {"n": 1}}}
        await ws.send(json.dumps({"id": 1, "method": "subscription.stop"}))
        while (frame := await recv_json(ws))["result"]["type"] != "stopped":
            pass
        await wait_for(lambda: state["closed"] == 1)
        await ws.send(request(2, "query", "stream"))
        error = (await recv_json(ws))["error"]["json"]
        assert error["data"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_connection_params_and_context_errors(live_server: Callable[..., Any]) -> None:
    app, _, _ = ws_app(limits=Limits(ws_connection_params_timeout_ms=200))
    async with live_server(app) as host:
        async with connect(f"ws://{host}/trpc?connectionParams=1") as ws:
            await ws.send("PING")
            assert await ws.recv() == "PONG"
            await ws.send(json.dumps({"method": "connectionParams", "data": {"token": "abc"}}))
            await ws.send(request(1, "query", "hello"))
            assert (await recv_json(ws))["result"]["data"] == {"json": {"hello": "abc"}}
        async with connect(f"ws://{host}/trpc?connectionParams=1") as ws:
            await ws.send(json.dumps({"method": "connectionParams", "data": {"token": "bad"}}))
            frames = await until_closed(ws)
            assert frames == [
                {
                    "id": None,
                    "error": {
                        "json": {
                            "message": "bad token",
                            "code": -32001,
                            "data": {"code": "UNAUTHORIZED", "httpStatus": 401},
                        }
                    },
                }
            ]
        async with connect(f"ws://{host}/trpc?connectionParams=1") as ws:
            assert await until_closed(ws) == []  # no connectionParams frame in time
            assert ws.close_code == 1008


async def test_binary_json_frames_are_accepted(live_server: Callable[..., Any]) -> None:
    app, _, _ = ws_app()
    async with live_server(app) as host, connect(f"ws://{host}/trpc") as ws:
        await ws.send(request(1, "query", "hello").encode())
        assert (await recv_json(ws))["id"] == 1
        await ws.send(b"\xff\xfe")
        assert (await recv_json(ws))["error"]["json"]["data"]["code"] == "PARSE_ERROR"


async def test_server_keepalive(live_server: Callable[..., Any]) -> None:
    app, _, _ = ws_app(keepalive=KeepAlive(ws_ping_ms=50, ws_pong_wait_ms=100))
    async with live_server(app) as host:
        async with connect(f"ws://{host}/trpc") as ws:
            for _ in range(3):
                assert await asyncio.wait_for(ws.recv(), 1) == "PING"
                await ws.send("PONG")
        async with connect(f"ws://{host}/trpc") as ws:
            assert await asyncio.wait_for(ws.recv(), 1) == "PING"
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 1)  # no PONG: the server gives up
            assert ws.close_code == 1011


async def test_broadcast_reconnect_and_close(live_server: Callable[..., Any]) -> None:
    app, server, state = ws_app()
    async with (
        live_server(app) as host,
        connect(f"ws://{host}/trpc") as ws1,
        connect(f"ws://{host}/trpc") as ws2,
    ):
        await ws1.send(request(1, "subscription", "forever"))
        assert (await recv_json(ws1))["result"]["type"] == "started"
        await ws2.send(request(1, "query", "hello"))
        await recv_json(ws2)
        assert server.open_sockets == 2
        await server.broadcast_reconnect()
        assert await recv_json(ws2) == {"id": None, "method": "reconnect"}
        while (frame := await recv_json(ws1)).get("method") != "reconnect":
            assert frame["result"]["type"] == "data"
        await server.close()
        await until_closed(ws1)
        await until_closed(ws2)
        assert ws1.close_code == 1012 and ws2.close_code == 1012
        await wait_for(lambda: state["closed"] == 1 and server.open_sockets == 0)
        async with connect(f"ws://{host}/trpc") as late:
            assert await until_closed(late) == []  # closing: new sockets are turned away


async def test_uvicorn_shutdown_moves_clients_away_first() -> None:
    """On shutdown WS clients get ``reconnect`` and sockets/streams end before uvicorn waits."""
    app, server, state = ws_app()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uv = TRPCUvicornServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"), [server], grace=0.1
    )
    serving = asyncio.ensure_future(uv.serve())
    while not uv.started:
        await asyncio.sleep(0.01)
    async with connect(f"ws://127.0.0.1:{port}/trpc") as ws, httpx.AsyncClient(timeout=5) as http:
        await ws.send(request(1, "subscription", "forever"))
        assert (await recv_json(ws))["result"]["type"] == "started"
        async with http.stream("GET", f"http://127.0.0.1:{port}/trpc/forever") as sse:
            chunks = sse.aiter_text()
            assert "connected" in await anext(chunks)
            uv.should_exit = True
            frames = await until_closed(ws)
            assert {"id": None, "method": "reconnect"} in frames
            assert ws.close_code == 1012
            rest = "".join([chunk async for chunk in chunks])
            assert "event: return" not in rest  # cut, not completed: the client reconnects
        await asyncio.wait_for(serving, 5)
    assert state["closed"] == 2
