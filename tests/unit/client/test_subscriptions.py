"""``subscribe_to_execution_events`` over WebSocket and SSE: ``fromIndex`` semantics, filters,
tokens, errors, and resuming after a dropped connection with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaingraph_executor.api.app import create_app
from chaingraph_executor.bootstrap import build_services
from chaingraph_executor.client import (
    Event,
    EventStream,
    ExecutorClient,
    ReconnectPolicy,
    RemoteError,
    TransportError,
)
from chaingraph_executor.serve import api_deps
from chaingraph_executor.settings import Settings

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
Live = Any  # conftest.LiveServer
Proxy = Any  # conftest.CuttableProxy


def assert_dense(events: list[Event], first_index: int = -1) -> None:
    """Every index once, in order, from ``first_index`` to the terminal event."""
    assert [e.index for e in events] == list(range(first_index, first_index + len(events)))
    assert events[-1].terminal and not any(e.terminal for e in events[:-1])


async def collect(stream: EventStream, *, after: int | None = None, then: Any = None) -> list[Event]:
    """All events of ``stream``; once ``after`` events arrived, await ``then()`` once."""
    out: list[Event] = []
    async with stream:
        async for event in stream:
            out.append(event)
            if after is not None and len(out) == after:
                await then()
    return out


async def started(client: ExecutorClient, flow: dict[str, Any]) -> str:
    await client.upload_flow(flow)
    eid = await client.create(flow["id"])
    await client.start(eid)
    return eid


async def test_from_index_is_a_seq_and_types_filter(client: ExecutorClient) -> None:
    eid = await started(client, json.loads((EXAMPLES / "math-diamond.json").read_text()))
    full = await collect(client.subscribe_to_execution_events(eid))
    assert_dense(full)
    assert full[0].type == "execution:created" and full[0].seq == 0 and full[1].type == "flow:started"

    stream = client.subscribe_to_execution_events(eid, from_index=5)
    tail = await collect(stream)
    assert [e.index for e in tail] == [e.index for e in full[5:]] and tail[0].index == 4
    assert stream.last_seq == full[-1].seq and stream.reconnects == 0

    partial = client.subscribe_to_execution_events(eid)
    async with partial:
        assert partial.last_seq is None
        firsts = [await anext(partial) for _ in range(3)]
        assert partial.last_seq == firsts[-1].seq == 2  # what was handed out, not what was buffered
    rest = await collect(client.subscribe_to_execution_events(eid, from_index=3))
    assert [e.index for e in firsts + rest] == [e.index for e in full]

    completed = await collect(
        client.subscribe_to_execution_events(eid, event_types=["node:completed"], batch_size=2)
    )
    assert [e.node_id for e in completed] == [e.node_id for e in full if e.type == "node:completed"]
    assert {e.type for e in completed} == {"node:completed"}
    assert completed[-1].outputs == {"result": 14}


async def test_websocket_stream_is_live_and_closes_when_left_early(
    live: Live, sleepy: Callable[..., dict[str, Any]]
) -> None:
    async with ExecutorClient(live.url) as client:
        assert client.subscriptions == "websocket"
        eid = await started(client, sleepy("ws", count=3, ms=100))
        events = await collect(client.subscribe_to_execution_events(eid))
        assert_dense(events)
        assert events[-1].type == "flow:completed"

        server = live.app.state.trpc
        stream = client.subscribe_to_execution_events(eid, batch_size=1)
        async for event in stream:
            assert event.index == -1
            assert server.open_sockets == 1
            break
        await stream.aclose()
        async with asyncio.timeout(5):
            while server.open_sockets:
                await asyncio.sleep(0.01)


@pytest.mark.parametrize("mode", ["websocket", "sse"])
async def test_resume_after_the_network_drops_mid_stream(
    mode: str,
    live: Live,
    proxy: Proxy,
    sleepy: Callable[..., dict[str, Any]],
    fast_reconnect: ReconnectPolicy,
) -> None:
    async with ExecutorClient(proxy.url, subscriptions=mode, reconnect=fast_reconnect) as client:  # type: ignore[arg-type]
        eid = await started(client, sleepy("drop", count=8, ms=200))
        stream = client.subscribe_to_execution_events(eid, batch_size=1, batch_timeout_ms=0)

        async def cut_twice() -> None:
            proxy.cut()
            await asyncio.sleep(0.3)
            proxy.cut()

        events = await collect(stream, after=6, then=cut_twice)
    assert_dense(events)
    assert events[-1].type == "flow:completed"
    assert stream.reconnects >= 1


async def test_resume_when_the_server_asks_clients_to_reconnect(
    live: Live, sleepy: Callable[..., dict[str, Any]], fast_reconnect: ReconnectPolicy
) -> None:
    async with ExecutorClient(live.url, reconnect=fast_reconnect) as client:
        eid = await started(client, sleepy("move", count=6, ms=200))
        stream = client.subscribe_to_execution_events(eid, batch_size=1, batch_timeout_ms=0)
        events = await collect(stream, after=4, then=live.app.state.trpc.broadcast_reconnect)
    assert_dense(events)
    assert stream.reconnects >= 1


@pytest.mark.parametrize("mode", ["websocket", "sse"])
async def test_resume_across_a_server_restart(
    mode: str, live: Live, sleepy: Callable[..., dict[str, Any]], fast_reconnect: ReconnectPolicy
) -> None:
    async with ExecutorClient(live.url, subscriptions=mode, reconnect=fast_reconnect) as client:  # type: ignore[arg-type]
        eid = await started(client, sleepy("restart", count=8, ms=200))
        stream = client.subscribe_to_execution_events(eid, batch_size=1, batch_timeout_ms=0)
        events = await collect(stream, after=5, then=lambda: live.restart(down_for=0.3))
    assert_dense(events)
    assert events[-1].type == "flow:completed"
    assert stream.reconnects >= 1


async def test_gives_up_when_the_server_stays_away(live: Live, sleepy: Callable[..., dict[str, Any]]) -> None:
    policy = ReconnectPolicy(attempts=2, base_delay_s=0.05, max_delay_s=0.05)
    async with ExecutorClient(live.url, reconnect=policy) as client:
        eid = await started(client, sleepy("gone", count=6, ms=150))
        stream = client.subscribe_to_execution_events(eid, batch_size=1, batch_timeout_ms=0)
        with pytest.raises(TransportError) as info:
            await collect(stream, after=3, then=live.stop)
    assert "lost the event stream" in str(info.value) and "after 2 attempts" in str(info.value)


@pytest.mark.parametrize("mode", ["websocket", "sse"])
async def test_unknown_execution_is_not_found(mode: str, live: Live) -> None:
    async with ExecutorClient(live.url, subscriptions=mode) as client:  # type: ignore[arg-type]
        with pytest.raises(RemoteError) as info:
            await collect(client.subscribe_to_execution_events("EXnope"))
    assert info.value.code == "NOT_FOUND"


async def test_unreachable_server_fails_the_subscription_at_once() -> None:
    async with ExecutorClient("http://127.0.0.1:9") as client:
        with pytest.raises(TransportError, match=r"cannot open the event stream at ws://127\.0\.0\.1:9/trpc"):
            await asyncio.wait_for(collect(client.subscribe_to_execution_events("EXx")), 5)


async def test_tokens_over_http_websocket_and_sse(
    tmp_path: Path, sleepy: Callable[..., dict[str, Any]]
) -> None:
    """With authentication on, the token travels as a Bearer header (HTTP, SSE) and in the
    WebSocket connectionParams; a wrong or missing token is UNAUTHORIZED."""
    import uvicorn

    settings = Settings(data_dir=tmp_path, database_url=None, shutdown_grace_s=0, dev_auth=False)
    async with build_services(settings, "embedded") as sv:
        _, token = await sv.auth.add_user("ada")
        _, other_token = await sv.auth.add_user("bob")
        app = create_app(api_deps(sv))
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        try:
            async with ExecutorClient(url, token=token) as ada:
                me = await ada.whoami()
                assert me.is_admin is False and me.dev_mode is False
                eid = await started(ada, sleepy("mine", count=1, ms=10))
                assert_dense(await collect(ada.subscribe_to_execution_events(eid)))
            async with ExecutorClient(url, token=token, subscriptions="sse") as ada_sse:
                assert_dense(await collect(ada_sse.subscribe_to_execution_events(eid)))
            async with ExecutorClient(url, token=other_token) as bob:
                with pytest.raises(RemoteError) as info:
                    await collect(bob.subscribe_to_execution_events(eid))
                assert info.value.code == "NOT_FOUND"  # not yours: it does not exist for you
            for bad in (ExecutorClient(url), ExecutorClient(url, token="cgx_wrong")):
                async with bad:
                    with pytest.raises(RemoteError) as info:
                        await bad.whoami()
                    assert info.value.code == "UNAUTHORIZED" and info.value.http_status == 401
                    with pytest.raises(RemoteError) as info:
                        await collect(bad.subscribe_to_execution_events(eid))
                    assert info.value.code == "UNAUTHORIZED"
            async with ExecutorClient(url, token="cgx_wrong") as wrong:
                with pytest.raises(RemoteError, match="Invalid or revoked token"):
                    await wrong.list_flows()
            async with ExecutorClient(
                "http://t", token="cgx_wrong", transport=httpx.ASGITransport(app=app)
            ) as in_process:
                with pytest.raises(RemoteError, match="UNAUTHORIZED"):
                    await in_process.whoami()
        finally:
            server.should_exit = True
            await task
