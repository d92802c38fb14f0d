"""The authorization matrix: every procedure x {owner, other user, admin, anonymous, revoked token}
with dev auth OFF, through the real app (``create_app(api_deps(services))``).

HTTP runs in-process (``httpx.ASGITransport``, SuperJSON envelopes); the token travels as
``Authorization: Bearer`` and, in a second run of the whole matrix, as the ``session`` cookie.
The WebSocket cases (``connectionParams`` ``token`` / ``sessionBadAI``, and the upgrade's cookie
and header) run against uvicorn started in-process on a free port.

Expected: the owner and an admin succeed (and the effect is checked); another user gets
FORBIDDEN or NOT_FOUND and nothing changes; anonymous callers and revoked tokens get UNAUTHORIZED
and nothing changes. The revoked token belongs to an ADMIN, so a revocation that did not bite
would show up as a success.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from chaingraph_executor.api.app import create_app
from chaingraph_executor.bootstrap import Services, build_services
from chaingraph_executor.domain.execution import ExecutionOptions, ExecutionStatus
from chaingraph_executor.errors import InvalidState
from chaingraph_executor.serve import api_deps
from chaingraph_executor.services.executions import Principal
from chaingraph_executor.settings import Settings

pytestmark = [pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]

PRINCIPALS = ("owner", "other", "admin", "anonymous", "revoked")
UNAUTHENTICATED = ("anonymous", "revoked")


def node(id_: str, type_: str, **inputs: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "inputs": inputs}


def edge(i: int, src: str, dst: str) -> dict[str, str]:
    sn, sp = src.split(".")
    tn, tp = dst.split(".")
    return {"id": f"e{i}", "sourceNodeId": sn, "sourcePortId": sp, "targetNodeId": tn, "targetPortId": tp}


def quick_flow(flow_id: str) -> dict[str, Any]:
    """a -> b: runs in milliseconds."""
    return {
        "id": flow_id,
        "nodes": [node("a", "math.add", a=1, b=2), node("b", "math.add", b=10)],
        "edges": [edge(0, "a.result", "b.a")],
    }


def sleepy_flow(flow_id: str, ms: int) -> dict[str, Any]:
    """a -> s (sleep ``ms``) -> b: 60 s gives a running execution; with a breakpoint at b and a
    short sleep, a paused one."""
    return {
        "id": flow_id,
        "nodes": [
            node("a", "math.add", a=1, b=2),
            node("s", "flow.sleep", ms=ms),
            node("b", "math.add", b=1),
        ],
        "edges": [edge(0, "a.result", "s.value"), edge(1, "s.out", "b.a")],
    }


# ------------------------------------------------------------------------------------ the world
@dataclass
class Server:
    """One set of services with dev auth off for the whole module (a fresh DBOS launch makes the
    first run of a process take a second); every test gets its own users and flows."""

    sv: Services
    app: Starlette
    http: httpx.AsyncClient
    ws_url: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("authz"),
        dev_auth=False,
        shutdown_grace_s=0,
        control_poll_s=0.2,
        event_poll_s=0.2,
        worker_concurrency=50,
    )
    async with build_services(settings, "embedded") as sv:
        assert sv.auth.dev_mode is False
        app = create_app(api_deps(sv))
        transport = httpx.ASGITransport(app=app)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="websockets-sansio"
        )
        uv = uvicorn.Server(config)
        task = asyncio.create_task(uv.serve())
        async with asyncio.timeout(10):
            while not uv.started:
                await asyncio.sleep(0.01)
        port = uv.servers[0].sockets[0].getsockname()[1]
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield Server(sv, app, client, f"ws://127.0.0.1:{port}/trpc")
        finally:
            await app.state.trpc.close()
            uv.should_exit = True
            await task


@dataclass
class World:
    server: Server
    tokens: dict[str, str]  # principal -> token (none for anonymous)
    user_ids: dict[str, str]  # principal -> user id
    owner: Principal
    flows: dict[str, str]  # quick / slow / pausable / bobs (the other user's) -> flow id

    @property
    def sv(self) -> Services:
        return self.server.sv

    @property
    def http(self) -> httpx.AsyncClient:
        return self.server.http


_worlds = itertools.count(1)


@pytest_asyncio.fixture(loop_scope="module")
async def world(server: Server) -> AsyncIterator[World]:
    sv = server.sv
    n = next(_worlds)
    tokens: dict[str, str] = {}
    user_ids: dict[str, str] = {}
    for principal, admin in (("owner", False), ("other", False), ("admin", True), ("revoked", True)):
        user, token = await sv.auth.add_user(f"{principal}-{n}", is_admin=admin)
        tokens[principal], user_ids[principal] = token, user.id
    await sv.auth.revoke(f"revoked-{n}")  # an admin whose token was revoked
    owner = Principal(user_ids["owner"])
    flows = {name: f"{name}-{n}" for name in ("quick", "slow", "pausable", "bobs")}
    await sv.flows.upload(owner, quick_flow(flows["quick"]))
    await sv.flows.upload(owner, sleepy_flow(flows["slow"], 60_000))
    await sv.flows.upload(owner, sleepy_flow(flows["pausable"], 300))
    world = World(server, tokens, user_ids, owner, flows)
    yield world
    # stop what still runs (60 s sleeps would hold worker slots)
    root = Principal("cleanup", is_admin=True)
    for flow_id in flows.values():
        for item in await sv.backend.executions.list_roots(flow_id, limit=100, after=None, after_id=None):
            if not item.execution.status.terminal:
                with contextlib.suppress(InvalidState):  # it may end by itself meanwhile
                    await sv.executions.stop(root, item.execution.id, "test cleanup")


def credentials(world: World, principal: str, via: str) -> dict[str, str]:
    token = world.tokens.get(principal)
    if token is None:
        return {}
    if via == "cookie":
        return {"cookie": f"session={token}"}
    return {"authorization": f"Bearer {token}"}


# ------------------------------------------------------------------------------------ the wire
@dataclass
class Outcome:
    status: int
    data: Any = None
    code: str | None = None
    message: str = ""
    completed: bool = False  # subscriptions: the stream ended with `return`

    @property
    def ok(self) -> bool:
        return self.code is None


def _error(status: int, envelope: dict[str, Any]) -> Outcome:
    shape = envelope["json"]
    return Outcome(status, code=shape["data"]["code"], message=shape["message"])


def parse_sse(status: int, text: str) -> Outcome:
    """The events of an SSE subscription (flattened batches), or its serialized-error."""
    events: list[dict[str, Any]] = []
    completed = False
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")
        kind = fields.get("event")
        if kind == "serialized-error":
            return _error(status, json.loads(fields["data"]))
        if kind == "return":
            completed = True
        elif kind is None and "data" in fields:
            events += json.loads(fields["data"])["json"]
    return Outcome(status, data=events, completed=completed)


async def call(world: World, kind: str, path: str, inp: Any, headers: dict[str, str]) -> Outcome:
    body = None if inp is None else json.dumps({"json": inp})
    if kind == "mutation":
        response = await world.http.post(
            f"/trpc/{path}", content=body or "", headers={**headers, "content-type": "application/json"}
        )
    else:
        params = {} if body is None else {"input": body}
        response = await world.http.get(f"/trpc/{path}", params=params, headers=headers)
    if kind == "subscription":
        assert response.headers["content-type"].startswith("text/event-stream"), response.text
        return parse_sse(response.status_code, response.text)
    envelope = response.json()
    if "error" in envelope:
        return _error(response.status_code, envelope["error"])
    return Outcome(response.status_code, data=envelope["result"]["data"]["json"])


# ------------------------------------------------------------------------------------ states
async def wait_until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def status_of(world: World, eid: str) -> ExecutionStatus:
    ex = await world.sv.backend.executions.get(eid)
    assert ex is not None
    return ex.status


async def has_event(world: World, eid: str, type_: str, node_id: str | None = None) -> bool:
    events = await world.sv.backend.events.read(eid, 0, limit=1000, types=frozenset({type_}))
    return any(node_id is None or (e.data.get("node") or {}).get("id") == node_id for e in events)


async def created(world: World, flow: str = "quick", **options: Any) -> str:
    opts = ExecutionOptions(**options) if options else None
    return await world.sv.executions.create(world.owner, world.flows[flow], options=opts)


async def running(world: World) -> str:
    """A running execution inside its 60 s sleep (nothing happens until it is stopped)."""
    eid = await created(world, "slow")
    await world.sv.executions.start(world.owner, eid)
    await wait_until(lambda: has_event(world, eid, "node:started", "s"), "the sleep to start")
    await wait_until(lambda: _status_is(world, eid, ExecutionStatus.RUNNING), "running")
    return eid


async def paused(world: World) -> str:
    """A paused execution: a breakpoint at b, reached after a short sleep (see the compat
    scenario ``breakpoint-right-after-start`` for a breakpoint reached at once)."""
    eid = await created(world, "pausable", breakpoints=["b"])
    await world.sv.executions.start(world.owner, eid)
    await wait_until(lambda: _status_is(world, eid, ExecutionStatus.PAUSED), "paused at the breakpoint")
    return eid


async def completed(world: World) -> str:
    eid = await created(world)
    await world.sv.executions.start(world.owner, eid)
    await wait_until(lambda: _status_is(world, eid, ExecutionStatus.COMPLETED), "completed")
    return eid


async def _status_is(world: World, eid: str, status: ExecutionStatus) -> bool:
    return await status_of(world, eid) is status


async def snapshot(world: World) -> dict[str, Any]:
    """Everything a denied call must leave alone: the test's flows (versions, owners) and every
    execution of them (status, owner, control, number of events)."""
    store = world.sv.backend
    out: dict[str, Any] = {}
    for flow_id in world.flows.values():
        stored = await store.flows.get(flow_id)
        out[flow_id] = None if stored is None else (stored.version, stored.owner_id)
        for root in await store.executions.list_roots(flow_id, limit=100, after=None, after_id=None):
            ex = root.execution
            control = await store.executions.get_control(ex.id)
            out[ex.id] = (
                ex.status,
                ex.owner_id,
                control.state,
                control.breakpoints,
                control.step_seq,
                await store.events.last_seq(ex.id),
            )
    return out


# ------------------------------------------------------------------------------------ the cases
Target = dict[str, Any]


@dataclass(frozen=True)
class Case:
    kind: str  # query | mutation | subscription
    setup: Callable[[World], Awaitable[Target]]
    make_input: Callable[[World, Target], Any]
    other_code: str | None  # the code another user gets (None: it succeeds on its own data)
    verify: Callable[[World, Target, Outcome, str], Awaitable[None]]


async def _v_create(world: World, t: Target, out: Outcome, who: str) -> None:
    ex = await world.sv.backend.executions.get(out.data["executionId"])
    assert ex is not None and ex.flow_id == world.flows["quick"]
    assert ex.owner_id == world.user_ids["owner"], (
        "an execution belongs to its flow's owner (also for admins)"
    )


async def _v_start(world: World, t: Target, out: Outcome, who: str) -> None:
    assert out.data == {"success": True}
    await wait_until(
        lambda: _status_is(world, t["executionId"], ExecutionStatus.COMPLETED), "the started run to complete"
    )


async def _v_stop(world: World, t: Target, out: Outcome, who: str) -> None:
    assert out.data == {"success": True}
    assert await status_of(world, t["executionId"]) is ExecutionStatus.STOPPED


async def _v_pause(world: World, t: Target, out: Outcome, who: str) -> None:
    assert out.data == {"success": True}
    assert (await world.sv.backend.executions.get_control(t["executionId"])).state == "pause"


async def _v_resume(world: World, t: Target, out: Outcome, who: str) -> None:
    assert out.data == {"success": True}
    await wait_until(
        lambda: _status_is(world, t["executionId"], ExecutionStatus.COMPLETED), "the resumed run to complete"
    )


async def _v_step(world: World, t: Target, out: Outcome, who: str) -> None:
    assert out.data == {"success": True}
    assert (await world.sv.backend.executions.get_control(t["executionId"])).step_seq == 1


async def _v_breakpoints(world: World, t: Target, out: Outcome, who: str) -> None:
    assert out.data == {"success": True, "nodeIds": ["b"]}
    assert (await world.sv.backend.executions.get_control(t["executionId"])).breakpoints == ("b",)


async def _v_details(world: World, t: Target, out: Outcome, who: str) -> None:
    assert out.data["id"] == t["executionId"] and out.data["ownerId"] == world.user_ids["owner"]
    assert out.data["status"] == "created"


async def _v_tree(world: World, t: Target, out: Outcome, who: str) -> None:
    assert [n["id"] for n in out.data] == [t["executionId"]]


async def _v_roots(world: World, t: Target, out: Outcome, who: str) -> None:
    assert [r["execution"]["id"] for r in out.data] == [t["executionId"]]


async def _v_subscribe(world: World, t: Target, out: Outcome, who: str) -> None:
    assert out.completed, "the stream of a completed execution ends with `return`"
    assert out.data[0]["type"] == "execution:created" and out.data[-1]["type"] == "flow:completed"
    assert [e["index"] for e in out.data] == list(range(-1, len(out.data) - 1))


async def _v_upload(world: World, t: Target, out: Outcome, who: str) -> None:
    flow_id = world.flows["quick"]
    assert out.data == {"flowId": flow_id, "version": 2}
    stored = await world.sv.backend.flows.get(flow_id)
    assert stored is not None and stored.version == 2
    assert stored.owner_id == world.user_ids["owner"], "a new version keeps the flow's owner"


async def _v_get_flow(world: World, t: Target, out: Outcome, who: str) -> None:
    flow_id = world.flows["quick"]
    assert out.data["flowId"] == flow_id and out.data["ownerId"] == world.user_ids["owner"]
    assert out.data["flow"]["id"] == flow_id


async def _all_flow_ids(world: World, who: str) -> set[str]:
    ids: set[str] = set()
    cursor = None
    headers = credentials(world, who, "bearer")
    for _ in range(100):
        page = await call(world, "query", "listFlows", {"limit": 100, "cursor": cursor}, headers)
        ids |= {item["flowId"] for item in page.data["items"]}
        cursor = page.data["nextCursor"]
        if cursor is None:
            break
    return ids


async def _v_list(world: World, t: Target, out: Outcome, who: str) -> None:
    ids = {item["flowId"] for item in out.data["items"]}
    f = world.flows
    if who == "other":
        assert ids == {f["bobs"]}, "another user lists only its own flows"
    elif who == "owner":
        assert ids == {f["quick"], f["slow"], f["pausable"]}, "the owner lists only its own flows"
    else:
        assert {f["quick"], f["bobs"]} <= await _all_flow_ids(world, who), "an admin lists every flow"


async def _v_delete(world: World, t: Target, out: Outcome, who: str) -> None:
    assert out.data == {"success": True}
    assert await world.sv.backend.flows.get(world.flows["quick"]) is None


async def _v_whoami(world: World, t: Target, out: Outcome, who: str) -> None:
    assert out.data == {"userId": world.user_ids[who], "isAdmin": who == "admin", "devMode": False}


async def _t_flow(world: World) -> Target:
    return {"executionId": await created(world)}


async def _t_list(world: World) -> Target:
    # another user's own flow: listFlows shows it to that user and to admins only
    await world.sv.flows.upload(Principal(world.user_ids["other"]), quick_flow(world.flows["bobs"]))
    return {}


async def _t_nothing(world: World) -> Target:
    return {}


async def _t_created(world: World) -> Target:
    return {"executionId": await created(world)}


async def _t_running(world: World) -> Target:
    return {"executionId": await running(world)}


async def _t_paused(world: World) -> Target:
    return {"executionId": await paused(world)}


async def _t_completed(world: World) -> Target:
    return {"executionId": await completed(world)}


def _eid(w: World, t: Target) -> dict[str, Any]:
    return {"executionId": t["executionId"]}


def _quick(w: World, t: Target) -> dict[str, Any]:
    return {"flowId": w.flows["quick"]}


CASES: dict[str, Case] = {
    "create": Case("mutation", _t_flow, _quick, "FORBIDDEN", _v_create),
    "start": Case("mutation", _t_created, _eid, "NOT_FOUND", _v_start),
    "stop": Case("mutation", _t_running, lambda w, t: {**_eid(w, t), "reason": "test"}, "NOT_FOUND", _v_stop),
    "pause": Case("mutation", _t_running, _eid, "NOT_FOUND", _v_pause),
    "resume": Case("mutation", _t_paused, _eid, "NOT_FOUND", _v_resume),
    "step": Case("mutation", _t_paused, _eid, "NOT_FOUND", _v_step),
    "setBreakpoints": Case(
        "mutation", _t_created, lambda w, t: {**_eid(w, t), "nodeIds": ["b"]}, "NOT_FOUND", _v_breakpoints
    ),
    "getExecutionDetails": Case("query", _t_created, _eid, "NOT_FOUND", _v_details),
    "getExecutionsTree": Case("query", _t_created, _eid, "NOT_FOUND", _v_tree),
    "getRootExecutions": Case("query", _t_flow, _quick, "FORBIDDEN", _v_roots),
    "subscribeToExecutionEvents": Case("subscription", _t_completed, _eid, "NOT_FOUND", _v_subscribe),
    "uploadFlow": Case(
        "mutation", _t_nothing, lambda w, t: {"flow": quick_flow(w.flows["quick"])}, "FORBIDDEN", _v_upload
    ),
    "getFlow": Case("query", _t_nothing, _quick, "NOT_FOUND", _v_get_flow),
    "listFlows": Case("query", _t_list, lambda w, t: {"limit": 100}, None, _v_list),
    "deleteFlow": Case("mutation", _t_nothing, _quick, "NOT_FOUND", _v_delete),
    "whoami": Case("query", _t_nothing, lambda w, t: None, None, _v_whoami),
}

HTTP_STATUS = {"UNAUTHORIZED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404}


async def test_every_procedure_is_in_the_matrix(server: Server) -> None:
    router = server.app.state.trpc.router
    assert {p.path for p in router} == set(CASES), "a procedure without an authorization case"


@pytest.mark.parametrize("via", ["bearer", "cookie"])
@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("procedure", list(CASES))
async def test_authorization_matrix(world: World, procedure: str, principal: str, via: str) -> None:
    case = CASES[procedure]
    target = await case.setup(world)
    before = await snapshot(world)
    inp = case.make_input(world, target)
    out = await call(world, case.kind, procedure, inp, credentials(world, principal, via))

    if principal in ("owner", "admin") or (principal == "other" and case.other_code is None):
        assert out.ok, f"{principal} {procedure}: {out.code} {out.message}"
        assert out.status == 200
        await case.verify(world, target, out, principal)
        return

    expected = "UNAUTHORIZED" if principal in UNAUTHENTICATED else case.other_code
    assert expected is not None
    assert out.code == expected, f"{principal} {procedure}: expected {expected}, got {out.code} {out.data!r}"
    if case.kind == "subscription":
        assert out.status == 200 and not out.data, "an SSE error comes after `connected`, with no event"
    else:
        assert out.status == HTTP_STATUS[expected]
    if principal == "revoked":
        assert "revoked" in out.message.lower()
    if expected == "NOT_FOUND":
        assert world.user_ids["owner"] not in out.message, "a NOT_FOUND must not leak the owner"
    assert await snapshot(world) == before, f"{principal} {procedure} changed something"


# ------------------------------------------------------------------------------------ more HTTP
async def test_bad_tokens_and_precedence(world: World) -> None:
    who = {"userId": world.user_ids["owner"], "isAdmin": False, "devMode": False}
    owner = world.tokens["owner"]
    for headers in (
        {"authorization": "Bearer cgx_not-a-token"},
        {"authorization": "Bearer " + owner[:-1]},
        {"cookie": "session=garbage"},
    ):
        out = await call(world, "query", "whoami", None, headers)
        assert (out.code, out.status) == ("UNAUTHORIZED", 401), headers
    # the scheme is case-insensitive; an empty bearer is no token
    assert (await call(world, "query", "whoami", None, {"authorization": f"bearer {owner}"})).data == who
    assert (await call(world, "query", "whoami", None, {"authorization": "Bearer "})).code == "UNAUTHORIZED"
    # Authorization wins over the cookie (a valid header with a revoked cookie, and the reverse)
    revoked = world.tokens["revoked"]
    both = {"authorization": f"Bearer {owner}", "cookie": f"session={revoked}"}
    assert (await call(world, "query", "whoami", None, both)).data == who
    reverse = {"authorization": f"Bearer {revoked}", "cookie": f"session={owner}"}
    assert (await call(world, "query", "whoami", None, reverse)).code == "UNAUTHORIZED"


async def test_revocation_takes_effect_at_once(world: World) -> None:
    headers = credentials(world, "other", "bearer")
    assert (await call(world, "query", "whoami", None, headers)).ok
    await world.sv.auth.revoke(world.user_ids["other"])
    out = await call(world, "query", "whoami", None, headers)
    assert out.code == "UNAUTHORIZED"


async def test_other_user_owns_its_own_flows(world: World) -> None:
    bobs = world.flows["bobs"]
    other = credentials(world, "other", "bearer")
    up = await call(world, "mutation", "uploadFlow", {"flow": quick_flow(bobs)}, other)
    assert up.data == {"flowId": bobs, "version": 1}
    made = await call(world, "mutation", "create", {"flowId": bobs}, other)
    assert made.ok
    eid = made.data["executionId"]
    # now the roles swap: the first owner is the "other user" of bob's execution
    owner = credentials(world, "owner", "bearer")
    assert (
        await call(world, "query", "getExecutionDetails", {"executionId": eid}, owner)
    ).code == "NOT_FOUND"
    assert (await call(world, "mutation", "create", {"flowId": bobs}, owner)).code == "FORBIDDEN"
    admin = credentials(world, "admin", "bearer")
    assert (await call(world, "query", "getExecutionDetails", {"executionId": eid}, admin)).ok


async def test_batch_authorizes_each_call(world: World) -> None:
    """One HTTP batch with the caller's execution and another owner's: each call on its own."""
    mine = await created(world)
    bob = Principal(world.user_ids["other"])
    await world.sv.flows.upload(bob, quick_flow(world.flows["bobs"]))
    theirs = await world.sv.executions.create(bob, world.flows["bobs"])
    inputs = {"0": {"json": {"executionId": mine}}, "1": {"json": {"executionId": theirs}}}
    response = await world.http.get(
        "/trpc/getExecutionDetails,getExecutionDetails",
        params={"batch": "1", "input": json.dumps(inputs)},
        headers=credentials(world, "owner", "bearer"),
    )
    first, second = response.json()
    assert response.status_code == 207
    assert first["result"]["data"]["json"]["id"] == mine
    assert second["error"]["json"]["data"]["code"] == "NOT_FOUND"


# ------------------------------------------------------------------------------------ WebSocket
async def ws_open(
    url: str, params: dict[str, str] | None, headers: dict[str, str] | None = None
) -> ClientConnection:
    ws = await connect(
        url + ("?connectionParams=1" if params is not None else ""), additional_headers=headers
    )
    if params is not None:
        await ws.send(json.dumps({"method": "connectionParams", "data": params}))
    return ws


async def ws_request(
    ws: ClientConnection, rid: int, method: str, path: str, inp: Any
) -> list[dict[str, Any]]:
    """Send one request; return its frames until the answer (query/mutation) or `stopped`/error."""
    params: dict[str, Any] = {"path": path}
    if inp is not None:
        params["input"] = {"json": inp}
    await ws.send(json.dumps({"id": rid, "method": method, "params": params}))
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(15):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("id") != rid:
                continue
            frames.append(frame)
            if "error" in frame or method != "subscription":
                return frames
            if frame["result"]["type"] == "stopped":
                return frames


def ws_code(frames: list[dict[str, Any]]) -> str | None:
    last = frames[-1]
    return last["error"]["json"]["data"]["code"] if "error" in last else None


WS_CASES = [
    # (principal, how the token travels, expected code of the subscription and of `stop`)
    ("owner", "token", None),
    ("owner", "sessionBadAI", None),
    ("admin", "sessionBadAI", None),
    ("owner", "cookie", None),
    ("owner", "bearer", None),
    ("other", "token", "NOT_FOUND"),
    ("other", "sessionBadAI", "NOT_FOUND"),
    ("anonymous", None, "UNAUTHORIZED"),
    ("revoked", "token", "UNAUTHORIZED"),
    ("revoked", "sessionBadAI", "UNAUTHORIZED"),
]


@pytest.mark.parametrize(("principal", "via", "expected"), WS_CASES)
async def test_websocket_authorization(
    world: World, principal: str, via: str | None, expected: str | None
) -> None:
    done = await completed(world)
    live = await running(world)
    token = world.tokens.get(principal, "")
    params = {via: token} if via in ("token", "sessionBadAI") else None
    headers = credentials(world, principal, via) if via in ("cookie", "bearer") else None
    before = await snapshot(world)
    ws = await ws_open(world.server.ws_url, params, headers)
    try:
        who = await ws_request(ws, 1, "query", "whoami", None)
        sub = await ws_request(ws, 2, "subscription", "subscribeToExecutionEvents", {"executionId": done})
        stop = await ws_request(ws, 3, "mutation", "stop", {"executionId": live})
    finally:
        await ws.close()
    if expected is None:
        assert who[-1]["result"]["data"]["json"]["userId"] == world.user_ids[principal]
        kinds = [f["result"]["type"] for f in sub]
        assert kinds[0] == "started" and kinds[-1] == "stopped" and "data" in kinds
        events = [
            e for f in sub if f["result"]["type"] == "data" for e in f["result"]["data"]["json"]["data"]
        ]
        assert events[-1]["type"] == "flow:completed"
        assert ws_code(stop) is None and await status_of(world, live) is ExecutionStatus.STOPPED
        return
    whoami_code = "UNAUTHORIZED" if principal in UNAUTHENTICATED else None
    assert ws_code(who) == whoami_code
    assert ws_code(sub) == expected
    assert all("error" in f or f["result"]["type"] == "started" for f in sub), "no data reaches the caller"
    assert ws_code(stop) == expected
    assert await snapshot(world) == before


@pytest.mark.parametrize("principal", ["other", "anonymous"])
async def test_websocket_subscription_refused_before_started(world: World, principal: str) -> None:
    done = await completed(world)
    token = world.tokens.get(principal)
    ws = await ws_open(world.server.ws_url, {"token": token} if token else None)
    try:
        sub = await ws_request(ws, 1, "subscription", "subscribeToExecutionEvents", {"executionId": done})
    finally:
        await ws.close()
    assert [ws_code([f]) for f in sub] == ["NOT_FOUND" if token else "UNAUTHORIZED"], sub
