"""Every query and mutation of the client against the real API app, in-process (ASGI), with the
errors they raise and the batch helper."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from chaingraph_executor.client import (
    Event,
    Execution,
    ExecutionStatus,
    ExecutorClient,
    FlowRecord,
    Identity,
    RemoteError,
    TransportError,
    UploadedFlow,
)

pytestmark = pytest.mark.timeout(60)

LiveServer = Any  # the conftest's live uvicorn (url, restart)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return doc


async def run_to_end(client: ExecutorClient, execution_id: str) -> list[Event]:
    async with client.subscribe_to_execution_events(execution_id) as stream:
        return [e async for e in stream]


async def test_whoami_in_dev_mode(client: ExecutorClient) -> None:
    me = await client.whoami()
    assert me == Identity(user_id="dev", is_admin=True, dev_mode=True)


async def test_upload_get_list_delete_flows(client: ExecutorClient) -> None:
    first = await client.upload_flow(example("math-diamond"))
    assert first == UploadedFlow(flow_id="math-diamond", version=1)
    second = await client.upload_flow(EXAMPLES / "math-diamond.json")  # a path works too
    assert second.version == 2
    await client.upload_flow(str(EXAMPLES / "hello-world.json"))

    record = await client.get_flow("math-diamond")
    assert isinstance(record, FlowRecord)
    assert (record.flow_id, record.version, record.name, record.nodes) == (
        "math-diamond",
        2,
        "Math diamond",
        5,
    )
    assert record.flow["nodes"][0]["id"] == "x" and isinstance(record.created_at, datetime)
    assert (await client.get_flow("math-diamond", version=1)).version == 1

    page = await client.list_flows()
    assert sorted(f.flow_id for f in page.items) == ["hello-world", "math-diamond"]
    assert page.next_cursor is None
    one = await client.list_flows(limit=1)
    assert len(one.items) == 1 and one.next_cursor
    rest = await client.list_flows(limit=1, cursor=one.next_cursor)
    assert {one.items[0].flow_id, rest.items[0].flow_id} == {"hello-world", "math-diamond"}

    await client.delete_flow("hello-world")
    with pytest.raises(RemoteError) as info:
        await client.get_flow("hello-world")
    assert info.value.code == "NOT_FOUND" and info.value.http_status == 404
    assert info.value.path == "getFlow"
    assert "hello-world" in info.value.message


async def test_invalid_flow_is_bad_request_with_every_problem(client: ExecutorClient) -> None:
    doc = example("math-diamond")
    doc["nodes"][0]["type"] = "nope.missing"
    doc["nodes"][1]["inputs"]["bogus"] = 1
    with pytest.raises(RemoteError) as info:
        await client.upload_flow(doc)
    err = info.value
    assert err.code == "BAD_REQUEST" and err.http_status == 400
    assert "unknown node type 'nope.missing'" in err.message
    assert any("unknown input port 'bogus'" in p for p in err.problems)
    assert str(err).startswith("BAD_REQUEST: invalid flow:")


async def test_input_validation_errors_carry_the_code(client: ExecutorClient) -> None:
    await client.upload_flow(example("math-diamond"))
    with pytest.raises(RemoteError) as info:
        await client.get_root_executions("math-diamond", limit=1000)
    assert info.value.code == "BAD_REQUEST" and "limit" in info.value.message
    with pytest.raises(RemoteError) as info:
        await client.create("math-diamond", options={"nope": 1})
    assert info.value.code == "BAD_REQUEST"
    with pytest.raises(RemoteError) as info:
        await client.create("no-such-flow")
    assert info.value.code == "NOT_FOUND"
    with pytest.raises(RemoteError) as info:
        await client.query("noSuchProcedure", {"x": 1})
    assert info.value.code == "NOT_FOUND" and "noSuchProcedure" in info.value.message


async def test_execution_lifecycle_details_and_state_errors(client: ExecutorClient) -> None:
    await client.upload_flow(example("math-diamond"))
    eid = await client.create("math-diamond")
    assert eid.startswith("EX") and len(eid) == 26
    details = await client.get_execution_details(eid)
    assert isinstance(details, Execution)
    assert details.status is ExecutionStatus.CREATED and details.started_at is None
    assert details.duration_ms is None and not details.terminal

    await client.start(eid)
    events = await run_to_end(client, eid)
    assert events[0].type == "execution:created" and events[-1].type == "flow:completed"
    details = await client.get_execution_details(eid)
    assert details.status is ExecutionStatus.COMPLETED and details.terminal
    assert details.outputs == {"half": {"result": 14}}
    assert details.duration_ms is not None and details.duration_ms >= 0
    assert details.flow_id == "math-diamond" and details.root_execution_id == eid

    for call in (
        client.start(eid),
        client.stop(eid),
        client.pause(eid),
        client.resume(eid),
        client.step(eid),
    ):
        with pytest.raises(RemoteError) as info:
            await call
        assert info.value.code == "BAD_REQUEST" and "status completed" in info.value.message
    with pytest.raises(RemoteError) as info:
        await client.get_execution_details("EXnope")
    assert info.value.code == "NOT_FOUND"


async def test_pause_step_resume_breakpoints_and_stop(
    live: LiveServer, sleepy: Callable[..., dict[str, Any]]
) -> None:
    # Live control needs live events: over a socket (httpx.ASGITransport buffers a response
    # until it ends, so through it the events of a run arrive when the run is over).
    async with ExecutorClient(live.url) as client:
        await _control(client, sleepy)


async def _control(client: ExecutorClient, sleepy: Callable[..., dict[str, Any]]) -> None:
    await client.upload_flow(sleepy("sleepy", count=6, ms=300))

    # breakpoint before s3, then one step, then resume
    eid = await client.create("sleepy")
    assert await client.set_breakpoints(eid, ["s3", "s3"]) == ["s3"]
    with pytest.raises(RemoteError) as info:
        await client.set_breakpoints(eid, ["nope"])
    assert info.value.code == "BAD_REQUEST"
    await client.start(eid)
    seen: list[Event] = []
    async with client.subscribe_to_execution_events(eid) as stream:
        async for event in stream:
            seen.append(event)
            if event.type == "debug:breakpoint-hit":
                assert event.node_id == "s3"
                await _wait_status(client, eid, ExecutionStatus.PAUSED)
                await client.step(eid)
                await client.resume(eid)
    types = [e.type for e in seen]
    assert "flow:paused" in types and "flow:resumed" in types and types[-1] == "flow:completed"

    # pause while running, then resume
    eid = await client.create("sleepy")
    await client.start(eid)
    await _wait_status(client, eid, ExecutionStatus.RUNNING)
    await client.pause(eid, "coffee")
    await _wait_status(client, eid, ExecutionStatus.PAUSED)
    await client.resume(eid)
    events = await run_to_end(client, eid)
    paused = [e for e in events if e.type == "flow:paused"]
    assert paused and paused[0].reason == "coffee"
    assert events[-1].type == "flow:completed"

    # stop while running
    eid = await client.create("sleepy")
    await client.start(eid)
    await _wait_status(client, eid, ExecutionStatus.RUNNING)
    await client.stop(eid, "enough")
    events = await run_to_end(client, eid)
    assert events[-1].type == "flow:cancelled" and events[-1].reason == "enough"
    details = await client.get_execution_details(eid)
    assert details.status is ExecutionStatus.STOPPED


async def _wait_status(client: ExecutorClient, eid: str, status: ExecutionStatus) -> None:
    async with asyncio.timeout(10):
        while (await client.get_execution_details(eid)).status is not status:
            await asyncio.sleep(0.02)


async def test_tree_and_root_executions(client: ExecutorClient) -> None:
    await client.upload_flow(example("emitter-listeners"))
    eid = await client.create("emitter-listeners")
    await client.start(eid)
    events = await run_to_end(client, eid)
    assert events[-1].type == "flow:completed"
    async with asyncio.timeout(15):
        while True:
            tree = await client.get_executions_tree(eid)
            if len(tree) == 3 and all(n.execution.terminal for n in tree):
                break
            await asyncio.sleep(0.05)
    root = tree[0]
    assert (root.id, root.parent_id, root.level) == (eid, None, 0)
    children = tree[1:]
    assert {c.parent_id for c in children} == {eid} and {c.level for c in children} == {1}
    assert all(c.execution.parent_execution_id == eid for c in children)

    second = await client.create("emitter-listeners")
    roots = await client.get_root_executions("emitter-listeners")
    assert [r.execution.id for r in roots] == [second, eid]
    assert roots[1].total_nested == 2 and roots[1].levels >= 1
    page = await client.get_root_executions("emitter-listeners", limit=1)
    after = await client.get_root_executions(
        "emitter-listeners", limit=1, after=page[0].execution.created_at, after_id=page[0].execution.id
    )
    assert [r.execution.id for r in page + after] == [second, eid]
    with pytest.raises(RemoteError) as info:
        await client.get_executions_tree(children[0].id)
    assert info.value.code == "NOT_FOUND"
    await client.stop(second)


async def test_create_with_options_integration_and_events(client: ExecutorClient) -> None:
    await client.upload_flow(example("emitter-listeners"))
    eid = await client.create(
        "emitter-listeners",
        options={"execution": {"maxConcurrency": 2}, "debug": True},
        integration={"source": "tests"},
        events=[{"eventName": "order.created", "payload": {"total": 5}}],
    )
    details = await client.get_execution_details(eid)
    assert details.options["execution"]["maxConcurrency"] == 2 and details.options["debug"] is True
    assert details.integration == {"source": "tests"}
    assert details.external_events == [{"eventName": "order.created", "payload": {"total": 5}}]
    await client.stop(eid)


async def test_generic_query_and_mutation(client: ExecutorClient) -> None:
    assert await client.query("whoami") == {"userId": "dev", "isAdmin": True, "devMode": True}
    out = await client.mutation("uploadFlow", {"flow": example("hello-world")})
    assert out == {"flowId": "hello-world", "version": 1}


class CountingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


async def test_batch_sends_one_request_per_kind(app: Starlette) -> None:
    transport = CountingTransport(httpx.ASGITransport(app=app))
    async with ExecutorClient("http://testserver", transport=transport) as client:
        await client.upload_flow(example("math-diamond"))
        transport.requests.clear()
        async with client.batch() as batch:
            me = batch.whoami()
            flow = batch.get_flow("math-diamond")
            missing = batch.get_flow("nope")
            flows = batch.list_flows(limit=10)
            created = batch.create("math-diamond")
            uploaded = batch.upload_flow(example("hello-world"))
            raw = batch.query("whoami")
            assert len(batch) == 7 and not me.done
            with pytest.raises(RuntimeError, match="not sent"):
                me.result()
        assert len(transport.requests) == 2
        post, get = transport.requests
        assert (post.method, post.url.path) == ("POST", "/trpc/create,uploadFlow")
        assert get.method == "GET" and get.url.path == "/trpc/whoami,getFlow,getFlow,listFlows,whoami"
        assert get.url.params["batch"] == "1"
        assert me.result().user_id == "dev" and raw.result()["userId"] == "dev"
        assert flow.result().flow_id == "math-diamond"
        assert isinstance(missing.error, RemoteError) and missing.error.code == "NOT_FOUND"
        with pytest.raises(RemoteError):
            missing.result()
        assert len(flows.result().items) == 2  # the mutations (uploading hello-world) went first
        assert uploaded.result().flow_id == "hello-world"
        eid = created.result()

        # control calls in one batch, sent explicitly
        batch = client.batch()
        start = batch.start(eid)
        details = batch.get_execution_details(eid)
        await batch.send()
        assert start.result() is None and details.result().id == eid
        batch = client.batch()
        pending = [
            batch.pause(eid),
            batch.resume(eid),
            batch.step(eid),
            batch.mutation("stop", {"executionId": eid}),
        ]
        pending.append(batch.set_breakpoints(eid, []))
        pending.append(batch.get_executions_tree(eid))
        pending.append(batch.get_root_executions("math-diamond"))
        pending.append(batch.delete_flow("hello-world"))
        pending.append(batch.stop(eid))
        await batch.send()
        assert all(p.done for p in pending)
        assert pending[-3].result() and pending[-4].result()[0].id == eid


async def test_batch_of_an_unreachable_server_fails_every_call() -> None:
    async with ExecutorClient("http://127.0.0.1:9", timeout=2) as client:
        async with client.batch() as batch:
            a = batch.whoami()
            b = batch.list_flows()
        assert isinstance(a.error, TransportError) and a.error is b.error


async def test_unreachable_server_is_a_transport_error_a_person_can_act_on() -> None:
    async with ExecutorClient("127.0.0.1:9", timeout=2) as client:
        assert client.base_url == "http://127.0.0.1:9"
        with pytest.raises(TransportError) as info:
            await client.whoami()
    message = str(info.value)
    assert "cannot reach the chaingraph server at http://127.0.0.1:9" in message
    assert "connection refused" in message and "chaingraph serve" in message


@pytest.fixture
async def not_trpc() -> AsyncIterator[ExecutorClient]:
    async def page(_: Request) -> HTMLResponse:
        return HTMLResponse("<h1>Bad gateway</h1>", status_code=502)

    app = Starlette(routes=[Route("/{path:path}", page, methods=["GET", "POST"])])
    async with ExecutorClient("http://proxy/trpc/", transport=httpx.ASGITransport(app=app)) as c:
        yield c


async def test_a_server_that_is_not_trpc_is_a_transport_error(not_trpc: ExecutorClient) -> None:
    assert not_trpc.base_url == "http://proxy"
    with pytest.raises(TransportError) as info:
        await not_trpc.list_flows()
    assert "HTTP 502" in str(info.value) and "is this a chaingraph server?" in str(info.value)
    with pytest.raises(TransportError):
        async with not_trpc.subscribe_to_execution_events("EXx") as stream:
            [e async for e in stream]


async def test_timeout_is_a_transport_error() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with ExecutorClient(f"http://127.0.0.1:{port}", timeout=0.2) as c:
            with pytest.raises(TransportError, match=r"did not answer within 0\.2 s"):
                await c.whoami()
    finally:
        server.close()
