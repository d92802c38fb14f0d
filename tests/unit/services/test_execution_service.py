"""The execution use cases over the memory backend and the in-process dispatcher: fast checks of
the orchestration that the DBOS workflow runs durably (integration tests repeat them on DBOS)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from chaingraph_executor.backends.memory import MemoryBackend
from chaingraph_executor.backends.memory.dispatcher import InProcessDispatcher
from chaingraph_executor.domain.events import ExecutionEvent
from chaingraph_executor.domain.execution import ExecutionOptions, ExecutionStatus
from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.errors import ExecutionNotFound, FlowNotFound, Forbidden, InvalidInput, InvalidState
from chaingraph_executor.services.executions import ExecutionService, Principal
from chaingraph_executor.services.flows import FlowService
from chaingraph_executor.services.orchestration import Ports

OWNER = Principal("alice")
OTHER = Principal("bob")
ADMIN = Principal("root", is_admin=True)


def node(id_: str, type_: str, **inputs: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "inputs": inputs}


def edge(i: int, src: str, dst: str) -> dict[str, str]:
    sn, sp = src.split(".")
    tn, tp = dst.split(".")
    return {"id": f"e{i}", "sourceNodeId": sn, "sourcePortId": sp, "targetNodeId": tn, "targetPortId": tp}


CHAIN = {
    "id": "chain",
    "nodes": [node("a", "math.add", a=1, b=2), node("s", "flow.sleep", ms=40), node("b", "math.add", b=10)],
    "edges": [edge(0, "a.result", "s.value"), edge(1, "s.out", "b.a")],
}


@dataclass
class Env:
    svc: ExecutionService
    flows: FlowService
    dispatcher: InProcessDispatcher
    backend: MemoryBackend

    async def events(self, eid: str, principal: Principal = OWNER, **kw: Any) -> list[ExecutionEvent]:
        out: list[ExecutionEvent] = []
        async with asyncio.timeout(10):
            async with self.svc.subscribe(principal, eid, **kw) as batches:
                async for batch in batches:
                    out += batch
        return out

    async def wait_type(self, eid: str, type_: str) -> None:
        async with asyncio.timeout(10):
            async with self.svc.subscribe(OWNER, eid, batch_timeout_ms=0) as batches:
                async for batch in batches:
                    if any(e.type == type_ for e in batch):
                        return


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with MemoryBackend(poll_interval_s=0.2, control_poll_interval_s=0.2) as backend:
        registry = builtin_registry()
        ports = Ports(backend.flows, backend.executions, backend.events, registry)
        async with InProcessDispatcher(ports, start_timeout_s=1.0) as dispatcher:
            flows = FlowService(backend.flows, registry)
            await flows.upload(OWNER, CHAIN)
            yield Env(ExecutionService(ports, dispatcher, stop_wait_s=1.0), flows, dispatcher, backend)


async def test_lifecycle_and_outputs(env: Env) -> None:
    eid = await env.svc.create(OWNER, "chain")
    await env.svc.start(OWNER, eid)
    events = await env.events(eid)
    assert [e.index for e in events] == list(range(-1, len(events) - 1))
    assert events[0].type == "execution:created" and events[-1].type == "flow:completed"
    ex = await env.svc.details(OWNER, eid)
    assert ex.status is ExecutionStatus.COMPLETED and ex.outputs == {"b": {"result": 13}}


async def test_only_the_owner_or_an_admin_sees_an_execution(env: Env) -> None:
    eid = await env.svc.create(OWNER, "chain")
    with pytest.raises(ExecutionNotFound):
        await env.svc.details(OTHER, eid)
    with pytest.raises(ExecutionNotFound):
        await env.svc.start(OTHER, eid)
    with pytest.raises(Forbidden):
        await env.svc.create(OTHER, "chain")
    with pytest.raises(FlowNotFound):
        await env.svc.create(OWNER, "missing")
    assert (await env.svc.details(ADMIN, eid)).id == eid
    assert (await env.svc.details(OWNER, eid)).status is ExecutionStatus.CREATED
    assert (await env.backend.executions.get_control(eid)).state == "wait"  # the refused start left it
    await env.svc.start(ADMIN, eid)  # an admin may start anyone's execution
    assert (await env.events(eid))[-1].type == "flow:completed"


async def test_a_repeated_start_is_accepted_and_runs_the_flow_once(env: Env) -> None:
    eid = await env.svc.create(OWNER, "chain")
    await env.svc.start(OWNER, eid)
    await env.svc.start(OWNER, eid)  # before a worker took it: still `created`, nothing changes
    types = [e.type for e in await env.events(eid)]
    assert types.count("flow:started") == 1 and types[-1] == "flow:completed"
    with pytest.raises(InvalidState, match="status completed"):
        await env.svc.start(OWNER, eid)


async def test_unknown_breakpoints_are_refused(env: Env) -> None:
    with pytest.raises(InvalidInput, match="nope"):
        await env.svc.create(OWNER, "chain", options=ExecutionOptions(breakpoints=["nope"]))


async def test_pause_resume_and_status_guards(env: Env) -> None:
    eid = await env.svc.create(OWNER, "chain")
    with pytest.raises(InvalidState, match="status created"):
        await env.svc.pause(OWNER, eid)
    await env.svc.start(OWNER, eid)
    await env.wait_type(eid, "node:started")
    await env.svc.pause(OWNER, eid)
    await env.wait_type(eid, "flow:paused")
    assert (await env.svc.details(OWNER, eid)).status is ExecutionStatus.PAUSED
    with pytest.raises(InvalidState, match="status paused"):
        await env.svc.start(OWNER, eid)
    await env.svc.resume(OWNER, eid)
    events = await env.events(eid)
    assert events[-1].type == "flow:completed"


async def test_stop_created_running_and_paused(env: Env) -> None:
    created = await env.svc.create(OWNER, "chain")
    await env.svc.stop(OWNER, created, "not needed")
    assert [e.type for e in await env.events(created)] == ["execution:created", "flow:cancelled"]
    assert (await env.svc.details(OWNER, created)).error_message == "not needed"
    await asyncio.sleep(0)
    assert env.dispatcher._tasks[created].done()  # the waiting workflow was woken and ended

    running = await env.svc.create(OWNER, "chain")
    await env.svc.start(OWNER, running)
    await env.wait_type(running, "node:started")
    await env.svc.stop(OWNER, running)
    assert (await env.svc.details(OWNER, running)).status is ExecutionStatus.STOPPED
    with pytest.raises(InvalidState):
        await env.svc.stop(OWNER, running)


async def test_start_timeout(env: Env) -> None:
    eid = await env.svc.create(OWNER, "chain")
    events = await env.events(eid)
    assert [e.type for e in events] == ["execution:created", "flow:failed"]
    assert "START_SIGNAL not received" in ((await env.svc.details(OWNER, eid)).error_message or "")


async def test_children_and_tree(env: Env) -> None:
    doc = {
        "id": "kids",
        "nodes": [
            node("emit", "event.emit", eventName="hi", payload=1),
            node("l", "event.listener", eventName="hi"),
            node("v", "math.add", b=1),
        ],
        "edges": [edge(0, "l.payload", "v.a")],
    }
    await env.flows.upload(OWNER, doc)
    eid = await env.svc.create(OWNER, "kids")
    await env.svc.start(OWNER, eid)
    events = await env.events(eid)
    types = [e.type for e in events]
    assert types.index("child:spawned") < types.index("child:completed") < types.index("flow:completed")
    tree = await env.svc.tree(OWNER, eid)
    assert [(n.level, n.execution.status) for n in tree] == [
        (0, ExecutionStatus.COMPLETED),
        (1, ExecutionStatus.COMPLETED),
    ]
    assert tree[1].execution.outputs == {"v": {"result": 2}}
    roots = await env.svc.roots(OWNER, "kids")
    assert (roots[0].levels, roots[0].total_nested) == (1, 1)


async def test_step_while_paused(env: Env) -> None:
    eid = await env.svc.create(OWNER, "chain", options=ExecutionOptions(breakpoints=["s"]))
    await env.svc.start(OWNER, eid)
    await env.wait_type(eid, "flow:paused")
    fresh = await env.svc.create(OWNER, "chain")
    with pytest.raises(InvalidState, match="pause it first"):
        await env.svc.step(OWNER, fresh)
    await env.svc.step(OWNER, eid)
    await asyncio.sleep(0.2)
    events = await env.backend.events.read(eid, 0, limit=1000)
    started = [e.data["node"]["id"] for e in events if e.type == "node:started"]
    assert started == ["a", "s"]
    await env.svc.resume(OWNER, eid)
    assert (await env.events(eid))[-1].type == "flow:completed"


async def test_resume_right_after_step_while_the_step_runs(env: Env) -> None:
    eid = await env.svc.create(OWNER, "chain", options=ExecutionOptions(breakpoints=["s"]))
    await env.svc.start(OWNER, eid)
    await env.wait_type(eid, "flow:paused")
    await env.svc.step(OWNER, eid)  # runs the 40 ms sleep node, then pauses again
    async with asyncio.timeout(5):
        while (await env.svc.details(OWNER, eid)).status is not ExecutionStatus.RUNNING:
            await asyncio.sleep(0.001)
    await env.svc.resume(OWNER, eid)  # accepted while the step is still running
    assert (await env.events(eid))[-1].type == "flow:completed"
    assert (await env.svc.details(OWNER, eid)).status is ExecutionStatus.COMPLETED
    # a running execution that nobody paused is still refused
    running = await env.svc.create(OWNER, "chain")
    await env.svc.start(OWNER, running)
    async with asyncio.timeout(5):
        while (await env.svc.details(OWNER, running)).status is not ExecutionStatus.RUNNING:
            await asyncio.sleep(0.001)
    with pytest.raises(InvalidState, match="status running"):
        await env.svc.resume(OWNER, running)


class _FailingEnqueue(InProcessDispatcher):
    """The in-process dispatcher whose enqueue fails: as its own call, or as a step of the
    store's transaction (``in_transaction``)."""

    in_transaction = False

    def enqueue_step(self, execution_id: str, depth: int = 0) -> Any:
        if not self.in_transaction:
            return None

        async def step(conn: Any) -> None:
            raise RuntimeError("queue unavailable")

        return step

    async def enqueue(self, execution_id: str, depth: int = 0) -> None:
        raise RuntimeError("queue unavailable")


@pytest.mark.parametrize("in_transaction", [False, True], ids=["own-call", "in-transaction"])
async def test_a_failed_enqueue_leaves_no_execution_waiting_forever(in_transaction: bool) -> None:
    async with MemoryBackend(poll_interval_s=0.2, control_poll_interval_s=0.2) as backend:
        registry = builtin_registry()
        ports = Ports(backend.flows, backend.executions, backend.events, registry)
        async with _FailingEnqueue(ports, start_timeout_s=1.0) as dispatcher:
            dispatcher.in_transaction = in_transaction
            await FlowService(backend.flows, registry).upload(OWNER, CHAIN)
            svc = ExecutionService(ports, dispatcher, stop_wait_s=1.0)
            with pytest.raises(RuntimeError, match="queue unavailable"):
                await svc.create(OWNER, "chain")
            roots = await backend.executions.list_roots("chain", limit=10, after=None)
            if in_transaction:
                assert roots == []  # nothing was written
            else:  # written, then failed with its terminal event
                assert [r.execution.status for r in roots] == [ExecutionStatus.FAILED]
                events = await backend.events.read(roots[0].execution.id, 0, limit=10)
                assert [e.type for e in events] == ["execution:created", "flow:failed"]
