"""Durable executions end to end, with DBOS launched, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chaingraph_executor.backends.dbos.runtime import DbosDispatcher
from chaingraph_executor.backends.sql import SqlBackend
from chaingraph_executor.backends.sql.notify import PgNotifier
from chaingraph_executor.backends.subscription import CONTROL_CHANNEL, EVENTS_CHANNEL
from chaingraph_executor.bootstrap import Services, build_services
from chaingraph_executor.domain.events import ExecutionEvent, created_event, event
from chaingraph_executor.domain.execution import Execution, ExecutionOptions, ExecutionStatus
from chaingraph_executor.errors import ExecutionNotFound, InvalidState
from chaingraph_executor.ports import StatusChange
from chaingraph_executor.services.auth import DEV_PRINCIPAL as P
from chaingraph_executor.settings import Settings
from chaingraph_executor.testing import new_root_execution

pytestmark = pytest.mark.timeout(60)


def node(id_: str, type_: str, **inputs: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "inputs": inputs}


def edge(i: int, src: str, dst: str) -> dict[str, str]:
    sn, sp = src.split(".")
    tn, tp = dst.split(".")
    return {"id": f"e{i}", "sourceNodeId": sn, "sourcePortId": sp, "targetNodeId": tn, "targetPortId": tp}


CHAIN = {
    "id": "chain",
    "nodes": [
        node("a", "math.add", a=1, b=2),
        node("s1", "flow.sleep", ms=60),
        node("s2", "flow.sleep", ms=60),
        node("b", "math.add", b=10),
    ],
    "edges": [edge(0, "a.result", "s1.value"), edge(1, "s1.out", "s2.value"), edge(2, "s2.out", "b.a")],
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def services(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Services]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
        start_timeout_s=getattr(request, "param_start_timeout", 300.0),
        shutdown_grace_s=0,
        control_poll_s=0.5,
        event_poll_s=0.5,
    )
    async with build_services(settings, "embedded") as sv:
        await sv.flows.upload(P, CHAIN)
        yield sv


async def collect(sv: Services, eid: str, *, from_index: int = 0, **kw: Any) -> list[ExecutionEvent]:
    out: list[ExecutionEvent] = []
    async with sv.executions.subscribe(P, eid, from_index=from_index, **kw) as batches:
        async for batch in batches:
            out += batch
    return out


async def wait_for(sv: Services, eid: str, type_: str, timeout: float = 10) -> ExecutionEvent:
    async with asyncio.timeout(timeout):
        async with sv.executions.subscribe(P, eid, batch_timeout_ms=0) as batches:
            async for batch in batches:
                for ev in batch:
                    if ev.type == type_:
                        return ev
    raise AssertionError(f"{type_} never came")


async def test_full_lifecycle(services: Services) -> None:
    sv = services
    eid = await sv.executions.create(P, "chain")
    assert (await sv.executions.details(P, eid)).status is ExecutionStatus.CREATED
    collector = asyncio.create_task(collect(sv, eid))
    await asyncio.sleep(0.05)
    await sv.executions.start(P, eid)
    events = await asyncio.wait_for(collector, 20)
    assert events[0].type == "execution:created" and events[0].index == -1
    assert events[1].type == "flow:started"
    assert events[-1].type == "flow:completed"
    assert [e.index for e in events] == list(range(-1, len(events) - 1))  # dense, no duplicates
    ex = await sv.executions.details(P, eid)
    assert ex.status is ExecutionStatus.COMPLETED
    assert ex.started_at is not None and ex.completed_at is not None
    assert ex.outputs == {"b": {"result": 13}}
    with pytest.raises(InvalidState, match="status completed"):
        await sv.executions.start(P, eid)
    # a terminal status is final
    late = await sv.backend.executions.set_status(
        eid, StatusChange(ExecutionStatus.FAILED, frozenset(ExecutionStatus))
    )
    assert late is None
    assert (await sv.executions.details(P, eid)).status is ExecutionStatus.COMPLETED


async def test_resubscribe_from_any_index_gives_exactly_the_missing_events(services: Services) -> None:
    sv = services
    eid = await sv.executions.create(P, "chain")
    await sv.executions.start(P, eid)
    full = await asyncio.wait_for(collect(sv, eid), 20)
    for from_index in (0, 1, 5, len(full) - 1):
        again = await collect(sv, eid, from_index=from_index)
        assert [e.index for e in again] == [e.index for e in full[from_index:]]
    assert await collect(sv, eid, event_types=["node:completed"]) == [
        e for e in full if e.type == "node:completed"
    ]


async def test_pause_then_resume(services: Services) -> None:
    sv = services
    eid = await sv.executions.create(P, "chain")
    await sv.executions.start(P, eid)
    await wait_for(sv, eid, "node:started")
    await sv.executions.pause(P, eid, "coffee")
    paused = await wait_for(sv, eid, "flow:paused")
    assert paused.data["reason"] == "coffee"
    assert (await sv.executions.details(P, eid)).status is ExecutionStatus.PAUSED
    await asyncio.sleep(0.3)
    with pytest.raises(InvalidState):
        await sv.executions.pause(P, eid)
    await sv.executions.resume(P, eid)
    events = await asyncio.wait_for(collect(sv, eid), 20)
    types = [e.type for e in events]
    p, r = types.index("flow:paused"), types.index("flow:resumed")
    assert "node:started" not in types[p:r]
    assert types[-1] == "flow:completed"
    assert (await sv.executions.details(P, eid)).status is ExecutionStatus.COMPLETED


async def test_step_and_breakpoints(services: Services) -> None:
    sv = services
    eid = await sv.executions.create(P, "chain", options=ExecutionOptions(breakpoints=["s2"]))
    await sv.executions.start(P, eid)
    hit = await wait_for(sv, eid, "debug:breakpoint-hit")
    assert hit.data["node"]["id"] == "s2"
    await wait_for(sv, eid, "flow:paused")
    await sv.executions.step(P, eid)  # runs s2 only
    await asyncio.sleep(0.4)
    events = await collect_until_now(sv, eid)
    started = [e.data["node"]["id"] for e in events if e.type == "node:started"]
    assert started == ["a", "s1", "s2"]
    assert [e.type for e in events].count("flow:paused") == 2
    await sv.executions.set_breakpoints(P, eid, [])
    await sv.executions.resume(P, eid)
    final = await asyncio.wait_for(collect(sv, eid), 20)
    assert final[-1].type == "flow:completed"


async def collect_until_now(sv: Services, eid: str) -> list[ExecutionEvent]:
    return await sv.backend.events.read(eid, 0, limit=10_000)


async def test_stop_while_waiting_for_start(services: Services) -> None:
    sv = services
    eid = await sv.executions.create(P, "chain")
    await sv.executions.stop(P, eid)
    ex = await sv.executions.details(P, eid)
    assert ex.status is ExecutionStatus.STOPPED and ex.error_message == "User requested stop"
    events = await asyncio.wait_for(collect(sv, eid), 5)
    assert [e.type for e in events] == ["execution:created", "flow:cancelled"]
    with pytest.raises(InvalidState):
        await sv.executions.start(P, eid)


async def test_stop_while_running_interrupts_nodes(services: Services) -> None:
    sv = services
    doc = {"id": "long", "nodes": [node("s", "flow.sleep", ms=30_000)], "edges": []}
    await sv.flows.upload(P, doc)
    eid = await sv.executions.create(P, "long")
    await sv.executions.start(P, eid)
    await wait_for(sv, eid, "node:started")
    await asyncio.wait_for(sv.executions.stop(P, eid, "changed my mind"), 5)
    ex = await sv.executions.details(P, eid)
    assert ex.status is ExecutionStatus.STOPPED
    events = await asyncio.wait_for(collect(sv, eid), 5)
    assert events[-1].type == "flow:cancelled" and events[-1].data["reason"] == "changed my mind"
    assert sum(e.type in ("flow:completed", "flow:failed", "flow:cancelled") for e in events) == 1


async def test_stop_while_paused(services: Services) -> None:
    sv = services
    eid = await sv.executions.create(P, "chain")
    await sv.executions.start(P, eid)
    await wait_for(sv, eid, "node:started")
    await sv.executions.pause(P, eid)
    await wait_for(sv, eid, "flow:paused")
    await sv.executions.stop(P, eid)
    assert (await sv.executions.details(P, eid)).status is ExecutionStatus.STOPPED
    events = await asyncio.wait_for(collect(sv, eid), 5)
    assert events[-1].type == "flow:cancelled"


async def test_unhandled_node_failure_fails_the_execution(services: Services) -> None:
    sv = services
    doc = {
        "id": "bad",
        "nodes": [node("f", "flow.fail", message="nope"), node("ok", "math.add")],
        "edges": [],
    }
    await sv.flows.upload(P, doc)
    eid = await sv.executions.create(P, "bad")
    await sv.executions.start(P, eid)
    events = await asyncio.wait_for(collect(sv, eid), 20)
    assert events[-1].type == "flow:failed"
    ex = await sv.executions.details(P, eid)
    assert ex.status is ExecutionStatus.FAILED
    assert ex.error_node_id == "f" and "nope" in (ex.error_message or "")


async def test_start_timeout_fails_with_a_terminal_event(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, start_timeout_s=0.5, shutdown_grace_s=0)
    async with build_services(settings, "embedded") as sv:
        await sv.flows.upload(P, CHAIN)
        eid = await sv.executions.create(P, "chain")
        events = await asyncio.wait_for(collect(sv, eid), 15)
        assert [e.type for e in events] == ["execution:created", "flow:failed"]
        ex = await sv.executions.details(P, eid)
        assert ex.status is ExecutionStatus.FAILED
        assert "START_SIGNAL not received" in (ex.error_message or "")


EMITTER = {
    "id": "emitter",
    "nodes": [
        node("emit1", "event.emit", eventName="greet", payload={"name": "Ada"}),
        node("emit2", "event.emit", eventName="greet", payload={"name": "Bob"}),
        node("listen", "event.listener", eventName="greet"),
        node("wait", "flow.sleep", ms=30),
    ],
    "edges": [edge(0, "listen.payload", "wait.value")],
}


async def test_children_run_appear_in_tree_and_parent_settles_after_them(services: Services) -> None:
    sv = services
    await sv.flows.upload(P, EMITTER)
    eid = await sv.executions.create(P, "emitter")
    await sv.executions.start(P, eid)
    events = await asyncio.wait_for(collect(sv, eid), 30)
    types = [e.type for e in events]
    assert types.count("child:spawned") == 2
    assert types.count("child:completed") == 2
    assert types[-1] == "flow:completed"
    assert [e.index for e in events] == list(range(-1, len(events) - 1))
    tree = await sv.executions.tree(P, eid)
    assert [n.level for n in tree] == [0, 1, 1]
    children = [n.execution for n in tree[1:]]
    assert all(c.status is ExecutionStatus.COMPLETED for c in children)
    assert sorted(c.outputs["wait"]["out"]["name"] for c in children) == ["Ada", "Bob"]  # type: ignore[index]
    with pytest.raises(ExecutionNotFound):
        await sv.executions.tree(P, children[0].id)
    roots = await sv.executions.roots(P, "emitter")
    assert roots[0].execution.id == eid and roots[0].total_nested == 2 and roots[0].levels == 1


async def test_stop_cascades_to_children(services: Services) -> None:
    sv = services
    doc = {
        "id": "slowkids",
        "nodes": [
            node("emit", "event.emit", eventName="go"),
            node("l", "event.listener", eventName="go"),
            node("s", "flow.sleep", ms=30_000),
        ],
        "edges": [edge(0, "l.payload", "s.value")],
    }
    await sv.flows.upload(P, doc)
    eid = await sv.executions.create(P, "slowkids")
    await sv.executions.start(P, eid)
    spawned = await wait_for(sv, eid, "child:spawned")
    child_id = spawned.data["childExecutionId"]
    await wait_for(sv, child_id, "node:started")
    await asyncio.wait_for(sv.executions.stop(P, eid), 10)
    async with asyncio.timeout(10):
        while (await sv.executions.details(P, child_id)).status is not ExecutionStatus.STOPPED:
            await asyncio.sleep(0.05)
    assert (await sv.executions.details(P, eid)).status is ExecutionStatus.STOPPED
    child_events = await asyncio.wait_for(collect(sv, child_id), 5)
    assert child_events[-1].type == "flow:cancelled"


async def test_the_workflow_is_enqueued_with_the_row(services: Services) -> None:
    """On PostgreSQL (application tables and DBOS in one database) the enqueue is part of the
    create transaction; on SQLite (DBOS has its own file) it follows it. Either way the workflow
    exists as soon as ``create`` returns."""
    sv = services
    shared = not sv.settings.app_database_url.startswith("sqlite")
    assert (sv.dispatcher.enqueue_step("probe") is not None) is shared
    eid = await sv.executions.create(P, "chain")
    statuses = await sv.dispatcher.client.list_workflows_async(
        workflow_ids=[eid], load_input=False, load_output=False
    )
    assert [s.workflow_id for s in statuses] == [eid]
    assert statuses[0].status in ("ENQUEUED", "PENDING")
    await sv.executions.stop(P, eid)


@pytest.mark.postgres
async def test_a_separate_dbos_database_enqueues_on_its_own(tmp_path: Path, pg_url: str) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url=pg_url, dbos_database_url=f"sqlite:///{tmp_path / 'dbos.sqlite'}"
    )
    async with DbosDispatcher(settings) as dispatcher:
        assert dispatcher.enqueue_step("probe") is None


async def test_an_execution_left_without_its_workflow_is_enqueued_at_startup(tmp_path: Path) -> None:
    """SQLite: the row and the enqueue are separate transactions. A row whose process stopped in
    between gets its workflow from the next worker that starts, and then runs normally."""
    settings = Settings(data_dir=tmp_path, shutdown_grace_s=0, control_poll_s=0.5, event_poll_s=0.5)
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    async with build_services(settings, "embedded") as sv:
        await sv.flows.upload(P, CHAIN)
        stored = await sv.backend.flows.get("chain")
        assert stored is not None
        orphan = Execution(
            id="orphan-1",
            flow_id="chain",
            owner_id=stored.owner_id,
            status=ExecutionStatus.CREATED,
            created_at=long_ago,
            updated_at=long_ago,
            root_execution_id="orphan-1",
            flow_version=stored.version,
        )
        created = created_event(
            execution_id=orphan.id,
            flow_id="chain",
            flow_metadata={"id": "chain"},
            owner_id=orphan.owner_id,
            root_execution_id=orphan.id,
            parent_execution_id=None,
            execution_depth=0,
        )
        await sv.backend.executions.create(orphan, created)  # the row only, as if the process died
        fresh = await sv.executions.create(P, "chain")  # a normal one, not an orphan
        assert sv.worker is not None
        assert await sv.worker.enqueue_orphans() == ["orphan-1"]
        assert await sv.worker.enqueue_orphans() == []  # enqueued once
        await sv.executions.start(P, "orphan-1")
        await wait_for(sv, "orphan-1", "flow:completed")
        assert (await sv.executions.details(P, "orphan-1")).outputs == {"b": {"result": 13}}
        await sv.executions.stop(P, fresh)


@pytest.mark.postgres
async def test_api_and_worker_processes_listen_on_what_they_wait_for(tmp_path: Path, pg_url: str) -> None:
    """An API process is woken for events (its subscriptions), a worker for control changes (its
    runs); neither hears the other channel. The long polls make a missed wake-up fail the test."""
    settings = Settings(data_dir=tmp_path, database_url=pg_url, event_poll_s=30, control_poll_s=30)
    async with SqlBackend(pg_url) as other:
        ex = await _stored_execution(other)
        async with build_services(settings, "api") as api:
            assert isinstance(api.backend.notifier, PgNotifier)
            assert api.backend.notifier.channels == (EVENTS_CHANNEL,)
            async with api.executions.subscribe(P, ex.id, from_index=1, batch_timeout_ms=0) as batches:
                await other.events.append(ex.id, [event(0, "flow:started", {})])
                batch = await asyncio.wait_for(anext(batches), 5)
            assert [e.type for e in batch] == ["flow:started"]
        async with build_services(
            settings.model_copy(update={"executor_id": "listen-w"}), "worker"
        ) as worker:
            assert isinstance(worker.backend.notifier, PgNotifier)
            assert worker.backend.notifier.channels == (CONTROL_CHANNEL,)
            async with worker.backend.executions.watch_control(ex.id) as controls:
                await other.executions.update_control(ex.id, state="pause")
                changed = await controls.changed(5)
            assert changed is not None and changed.state == "pause"


async def _stored_execution(backend: SqlBackend) -> Execution:
    ex, created = new_root_execution(f"EXlisten{time.time_ns()}", flow_id=CHAIN["id"], owner_id=P.user_id)
    await backend.executions.create(ex, created)
    return ex
