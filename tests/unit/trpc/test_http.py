"""HTTP transport: replays every captured HTTP request (raw probes and the real client's) against
the spec router and compares the decoded answers with the reference's; plus limits, context
creation, method override and SSE/JSONL streaming over a real socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from chaingraph_executor.api.trpc import KeepAlive, Limits, RequestInfo, trpc_routes
from chaingraph_executor.trpc import Router, TRPCError, tracked

VECTORS = Path(__file__).resolve().parents[2] / "fixtures" / "trpc_vectors"


def _raw_http_names() -> list[str]:
    return sorted(p.stem for p in VECTORS.glob("raw-http-*.json"))


def _replayable_requests() -> list[tuple[str, int, dict[str, Any], dict[str, Any]]]:
    """``(scenario, n, request, response)`` for every HTTP exchange the real client made that
    the proxy did not cut short."""
    out = []
    for path in sorted(VECTORS.glob("*.json")):
        if path.name == "INDEX.json" or path.name.startswith("raw-") or path.stem == "sse-server-ping":
            continue
        wire = json.loads(path.read_text())["wire"]
        cut = {e["conn"] for e in wire if e["kind"] in ("proxy-action", "http-client-closed")}
        requests = {e["conn"]: e for e in wire if e["kind"] == "http-request"}
        for conn, req in requests.items():
            if conn in cut:
                continue
            head = next(e for e in wire if e.get("conn") == conn and e["kind"] == "http-response-head")
            end = next((e for e in wire if e.get("conn") == conn and e["kind"] == "http-response-end"), None)
            if end is None:
                continue
            out.append((path.stem, conn, req, {"head": head, "body": end["body"]}))
    return out


REPLAYS = _replayable_requests()


@pytest.fixture
async def client(spec_app: ModuleType) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=spec_app.build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def _as_vector(request: dict[str, Any], response: httpx.Response) -> dict[str, Any]:
    return {
        "request": request,
        "observed": {"status": response.status_code, "body": response.text},
        "wire": [
            {
                "kind": "http-response-head",
                "headers": {"content-type": response.headers.get("content-type", "")},
            }
        ],
    }


def _send_args(req: dict[str, Any]) -> dict[str, Any]:
    headers = {
        k: v for k, v in (req.get("headers") or {}).items() if k not in ("connection", "content-length")
    }
    return {
        "method": req["method"],
        "url": req.get("path") or req["url"],
        "headers": headers,
        "content": req.get("body"),
    }


@pytest.mark.parametrize("name", _raw_http_names())
async def test_raw_http_probe(name: str, client: httpx.AsyncClient, harness: ModuleType, vector: Any) -> None:
    vec = vector(name)
    response = await client.request(**_send_args(vec["request"]))
    expected, actual = (
        harness.decode_raw_http(vec),
        harness.decode_raw_http(_as_vector(vec["request"], response)),
    )
    assert actual == expected
    ref_head = next(e for e in vec["wire"] if e["kind"] == "http-response-head")["headers"]
    if "allow" in ref_head:
        assert response.headers["allow"] == ref_head["allow"]
    if response.status_code != 204:
        assert response.headers["vary"] == "trpc-accept, accept"


@pytest.mark.parametrize(
    ("scenario", "conn", "request_", "reference"), REPLAYS, ids=[f"{s}#{c}" for s, c, _, _ in REPLAYS]
)
async def test_replay_real_client_request(
    scenario: str,
    conn: int,
    request_: dict[str, Any],
    reference: dict[str, Any],
    client: httpx.AsyncClient,
    harness: ModuleType,
) -> None:
    response = await client.request(**_send_args(request_))
    probe = {"path": request_["url"]}
    ref_vec = {
        "request": probe,
        "observed": {"status": reference["head"]["status"], "body": reference["body"]},
        "wire": [reference["head"]],
    }
    assert harness.decode_raw_http(_as_vector(probe, response)) == harness.decode_raw_http(ref_vec)
    assert (
        response.headers.get("content-type", "").split(";")[0]
        == reference["head"]["headers"]["content-type"].split(";")[0]
    )


# ------------------------------------------------------------------------------------ own router
def small_app(**options: Any) -> tuple[Starlette, Any, list[RequestInfo]]:
    router = Router()
    seen: list[RequestInfo] = []
    state: dict[str, Any] = {"closed": 0}

    @router.query("hello")
    async def hello(ctx: Any, input: Any) -> str:
        return "hi"

    @router.mutation("store")
    async def store(ctx: Any, input: Any) -> int:
        return len(json.dumps(input))

    @router.subscription("once")
    async def once(ctx: Any, input: Any) -> AsyncIterator[Any]:
        yield input

    @router.subscription("forever")
    async def forever(ctx: Any, input: Any) -> AsyncIterator[Any]:
        try:
            n = 0
            while True:
                n += 1
                yield tracked(str(n), {"n": n})
                await asyncio.sleep(0.01)
        finally:
            state["closed"] += 1

    def create_context(info: RequestInfo) -> dict[str, Any]:
        seen.append(info)
        if info.headers.get("authorization") == "Bearer bad":
            raise TRPCError("UNAUTHORIZED", "bad token")
        return {}

    routes, server = trpc_routes(router, prefix="/api/trpc", create_context=create_context, **options)
    app = Starlette(routes=routes)
    app.state.trpc = server
    app.state.sub = state
    return app, server, seen


async def call(app: Starlette, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        return await http.request(method, url, **kwargs)


async def test_body_and_batch_limits() -> None:
    app, _, _ = small_app(limits=Limits(max_body_bytes=100, max_batch_size=2))
    ok = await call(app, "POST", "/api/trpc/store", json={"json": "x" * 10})
    assert ok.status_code == 200 and ok.json() == {"result": {"data": {"json": 12}}}
    big = await call(app, "POST", "/api/trpc/store", json={"json": "x" * 200})
    assert big.status_code == 413
    assert big.json()["error"]["json"]["data"] == {"code": "PAYLOAD_TOO_LARGE", "httpStatus": 413}
    batch = await call(app, "GET", "/api/trpc/hello,hello,hello?batch=1")
    assert batch.status_code == 400
    assert batch.json()["error"]["json"]["message"] == "Batch call exceeds maximum size"
    assert (await call(app, "GET", "/api/trpc/hello,hello?batch=1")).status_code == 200


async def test_context_creation_and_request_info() -> None:
    app, _, seen = small_app()
    denied = await call(app, "GET", "/api/trpc/hello", headers={"authorization": "Bearer bad"})
    assert denied.status_code == 401
    assert denied.json() == {
        "error": {
            "json": {
                "message": "bad token",
                "code": -32001,
                "data": {"code": "UNAUTHORIZED", "httpStatus": 401},
            }
        }
    }
    params = '{"token":"abc"}'
    await call(
        app, "GET", "/api/trpc/hello", params={"connectionParams": params}, headers={"cookie": "sid=s1"}
    )
    info = seen[-1]
    assert info.transport == "http" and info.paths == ("hello",)
    assert info.connection_params == {"token": "abc"} and info.cookies["sid"] == "s1"
    assert info.client is not None
    response = await call(
        app, "GET", "/api/trpc/once?input=%7B%22json%22%3A%7B%7D%7D", headers={"last-event-id": "7"}
    )
    assert seen[-1].transport == "sse" and response.status_code == 200
    assert 'data: {"json":{"lastEventId":"7"}}\nid: \n\nevent: restore-id\ndata: \nid: 7\n\n' in response.text


async def test_method_override_opt_in() -> None:
    app, _, _ = small_app(allow_method_override=True)
    response = await call(app, "POST", "/api/trpc/hello", json={})
    assert response.status_code == 200 and response.json() == {"result": {"data": {"json": "hi"}}}
    strict, _, _ = small_app()
    refused = await call(strict, "POST", "/api/trpc/hello", json={})
    assert refused.status_code == 405 and refused.headers["allow"] == "GET"


async def test_head_and_unknown() -> None:
    app, _, _ = small_app()
    head = await call(app, "HEAD", "/api/trpc/hello")
    assert head.status_code == 204 and head.content == b""
    missing = await call(app, "GET", "/api/trpc")
    assert missing.status_code == 404
    assert missing.json()["error"]["json"]["message"] == 'No procedure found on path ""'


# ------------------------------------------------------------------------------------ real socket
async def test_sse_stops_the_subscription_when_the_client_leaves(live_server: Callable[..., Any]) -> None:
    app, _, _ = small_app()
    async with live_server(app) as host, httpx.AsyncClient(timeout=5) as http:
        async with http.stream("GET", f"http://{host}/api/trpc/forever") as response:
            assert response.headers["content-type"] == "text/event-stream"
            assert response.headers["cache-control"] == "no-cache, no-transform"
            received = ""
            async for chunk in response.aiter_text():
                received += chunk
                if received.count("id: ") >= 3:
                    break
        assert received.startswith("event: connected\ndata: {}\n\n")
        for _ in range(100):
            if app.state.sub["closed"]:
                break
            await asyncio.sleep(0.01)
        assert app.state.sub["closed"] == 1


async def test_server_close_ends_sse_streams(live_server: Callable[..., Any]) -> None:
    app, server, _ = small_app(keepalive=KeepAlive(sse_ping_ms=20, sse_reconnect_after_inactivity_ms=1000))
    async with live_server(app) as host, httpx.AsyncClient(timeout=5) as http:
        async with http.stream("GET", f"http://{host}/api/trpc/forever") as response:
            text = ""
            async for chunk in response.aiter_text():
                text += chunk
                if "id: 2" in text and server.open_streams:
                    await server.close()
            # the stream ended (no "return": clients reconnect elsewhere)
        assert 'data: {"reconnectAfterInactivityMs":1000}' in text
        assert "event: return" not in text
        assert app.state.sub["closed"] == 1
        assert server.open_streams == 0


async def test_jsonl_streams_over_a_socket(
    live_server: Callable[..., Any], spec_app: ModuleType, harness: ModuleType
) -> None:
    app = spec_app.build_app()
    async with live_server(app) as host, httpx.AsyncClient(timeout=5) as http:
        url = f"http://{host}/trpc/slow,greet"
        inputs = {"0": {"json": {"ms": 100}}, "1": {"json": {"name": "Bob"}}}
        async with http.stream(
            "GET",
            url,
            params={"batch": "1", "input": json.dumps(inputs)},
            headers={"trpc-accept": "application/jsonl"},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            lines = [line async for line in response.aiter_lines() if line]
    assert len(lines) == 3
    assert json.loads(lines[1])["json"][0] == 1  # greet first: it does not wait for slow
    decoded = harness.decode_jsonl("\n".join(lines) + "\n", True)
    assert decoded["0"] == {"result": {"data": {"sleptMs": 100}}}
