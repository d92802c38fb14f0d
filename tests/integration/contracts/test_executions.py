"""ExecutionStore contract (memory, SQLite, PostgreSQL): atomic create, compare-and-set status
changes (a terminal status is final), finish, the tree, root listings, children, counts and the
control channel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chaingraph_executor.domain.events import ErrorInfo, EventType, ExecutionEvent
from chaingraph_executor.domain.execution import ExecutionStatus
from chaingraph_executor.errors import Conflict, ExecutionNotFound, InvalidInput
from chaingraph_executor.ports import Control, StatusChange

S = ExecutionStatus
ALL = frozenset(ExecutionStatus)


async def test_create_stores_the_row_and_the_created_event(backend: Any, make: Any) -> None:
    stamp = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    execution = make.execution(
        options={"debug": True, "breakpoints": ["n1"], "execution": {"maxConcurrency": 3}},
        integration={"archai": {"agentId": "a1"}, "at": stamp},
        external_events=[{"eventName": "go", "payload": {"x": [1, 2]}}],
        flow_version=3,
        event_name="go",
        created_at=stamp,
    )
    await backend.executions.create(execution, make.created(execution))

    got = await backend.executions.get(execution.id)
    assert got == execution
    assert got.created_at.tzinfo is not None
    assert got.integration["at"] == stamp

    events = await backend.events.read(execution.id, 0, limit=10)
    assert [(e.seq, e.index, e.type) for e in events] == [(0, -1, EventType.EXECUTION_CREATED.value)]
    assert events[0].data["executionId"] == execution.id
    assert await backend.events.last_seq(execution.id) == 0
    assert await backend.executions.get("EXmissing") is None


async def test_create_is_all_or_nothing(backend: Any, make: Any) -> None:
    execution = await make.create()
    with pytest.raises(Conflict):
        await make.create(execution)
    assert await backend.events.last_seq(execution.id) == 0

    # the created event (seq 0) already exists: no row may be left behind
    orphan = make.execution()
    await backend.events.append(orphan.id, [make.created(orphan)])
    with pytest.raises(Conflict):
        await make.create(orphan)
    assert await backend.executions.get(orphan.id) is None


async def test_status_is_compare_and_set(backend: Any, make: Any) -> None:
    ex = await make.create()
    created = await backend.executions.get(ex.id)

    assert await backend.executions.set_status(ex.id, StatusChange(S.PAUSED, frozenset({S.RUNNING}))) is None
    running = await backend.executions.set_status(ex.id, StatusChange(S.RUNNING, frozenset({S.CREATED})))
    assert running is not None
    assert running.status is S.RUNNING
    assert running.started_at is not None and running.started_at.tzinfo is not None
    assert running.updated_at >= created.updated_at
    assert running.completed_at is None
    # the same CAS again fails: the status moved on
    assert await backend.executions.set_status(ex.id, StatusChange(S.RUNNING, frozenset({S.CREATED}))) is None

    paused = await backend.executions.set_status(ex.id, StatusChange(S.PAUSED, frozenset({S.RUNNING})))
    assert paused is not None and paused.status is S.PAUSED
    resumed = await backend.executions.set_status(ex.id, StatusChange(S.RUNNING, frozenset({S.PAUSED})))
    assert resumed is not None
    assert resumed.started_at == running.started_at  # set the first time only

    done = await backend.executions.set_status(
        ex.id,
        StatusChange(S.COMPLETED, frozenset({S.RUNNING}), outputs={"sum": 3, "at": running.started_at}),
    )
    assert done is not None
    assert done.completed_at is not None and done.completed_at.tzinfo is not None
    assert done.outputs == {"sum": 3, "at": running.started_at}
    assert await backend.executions.get(ex.id) == done
    assert await backend.executions.set_status(ex.id, StatusChange(S.RUNNING, frozenset({S.PAUSED}))) is None


async def test_a_terminal_status_is_never_overwritten(backend: Any, make: Any) -> None:
    ex = await make.running()
    failed = await backend.executions.set_status(
        ex.id, StatusChange(S.FAILED, ALL, error_message="boom", error_node_id="n7")
    )
    assert failed is not None
    assert (failed.error_message, failed.error_node_id) == ("boom", "n7")
    for status in ExecutionStatus:
        assert await backend.executions.set_status(ex.id, StatusChange(status, ALL)) is None
    assert (await backend.executions.get(ex.id)).status is S.FAILED
    assert await backend.executions.set_status("EXmissing", StatusChange(S.RUNNING, ALL)) is None


async def test_transitions_outside_the_state_machine_are_refused(backend: Any, make: Any) -> None:
    ex = await make.create()
    # created -> completed is not a transition, even if the caller "expects" created
    assert (
        await backend.executions.set_status(ex.id, StatusChange(S.COMPLETED, frozenset({S.CREATED}))) is None
    )
    assert await backend.executions.set_status(ex.id, StatusChange(S.PAUSED, ALL)) is None
    stopped = await backend.executions.set_status(ex.id, StatusChange(S.STOPPED, frozenset({S.CREATED})))
    assert stopped is not None and stopped.completed_at is not None and stopped.started_at is None


async def test_concurrent_cas_has_exactly_one_winner(backend: Any, make: Any) -> None:
    ex = await make.running()
    results = await asyncio.gather(
        *(
            backend.executions.set_status(ex.id, StatusChange(status, frozenset({S.RUNNING})))
            for status in (S.COMPLETED, S.FAILED, S.STOPPED, S.PAUSED) * 3
        )
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert (await backend.executions.get(ex.id)).status is winners[0].status


async def test_finish_writes_status_and_terminal_events_together(backend: Any, make: Any) -> None:
    ex = await make.running()
    await backend.events.append(ex.id, make.events(0, 3))
    terminal = ExecutionEvent(
        3, EventType.FLOW_FAILED.value, datetime.now(UTC), {"error": ErrorInfo("bad", "TypeError")}
    )
    done = await backend.executions.finish(
        ex.id, StatusChange(S.FAILED, frozenset({S.RUNNING}), error_message="bad"), [terminal]
    )
    assert done is not None and done.status is S.FAILED and done.error_message == "bad"
    stored = await backend.events.read(ex.id, 4, limit=10)
    assert [(e.seq, e.type) for e in stored] == [(4, EventType.FLOW_FAILED.value)]
    assert stored[0].data == {"error": ErrorInfo("bad", "TypeError")}

    # the CAS fails: nothing is written
    again = await backend.executions.finish(ex.id, StatusChange(S.COMPLETED, ALL), [make.terminal(4)])
    assert again is None
    assert await backend.events.last_seq(ex.id) == 4


async def test_finish_with_a_duplicate_seq_changes_nothing(backend: Any, make: Any) -> None:
    ex = await make.running()
    await backend.events.append(ex.id, make.events(0, 3))
    with pytest.raises(Conflict):
        await backend.executions.finish(
            ex.id, StatusChange(S.COMPLETED, frozenset({S.RUNNING})), [make.terminal(2)]
        )
    assert (await backend.executions.get(ex.id)).status is S.RUNNING
    assert [e.type for e in await backend.events.read(ex.id, 3, limit=5)] == [EventType.NODE_STARTED.value]


async def test_tree_levels_order_and_unreachable_rows(backend: Any, make: Any) -> None:
    root = await make.create(make.execution("EXroot"))
    b = await make.create(make.execution("EXb", parent=root))
    a = await make.create(make.execution("EXa", parent=root))
    a2 = await make.create(make.execution("EXa2", parent=a))
    c3 = await make.create(make.execution("EXc3", parent=a2))
    # claims the root but hangs off a parent that does not exist: unreachable, dropped
    stray = make.execution("EXstray", parent=a)
    stray.parent_execution_id = "EXghost"
    await make.create(stray)
    other = await make.create(make.execution("EXother"))

    nodes = await backend.executions.tree("EXroot")
    assert [(n.id, n.parent_id, n.level) for n in nodes] == [
        ("EXroot", None, 0),
        ("EXa", "EXroot", 1),
        ("EXb", "EXroot", 1),
        ("EXa2", "EXa", 2),
        ("EXc3", "EXa2", 3),
    ]
    assert nodes[0].execution == await backend.executions.get("EXroot")
    assert {n.execution.id for n in nodes} == {root.id, a.id, b.id, a2.id, c3.id}
    assert await backend.executions.tree("EXa") == []  # not a root
    assert await backend.executions.tree("EXmissing") == []
    assert [n.id for n in await backend.executions.tree(other.id)] == [other.id]


async def test_list_roots_newest_first_with_nesting(backend: Any, make: Any) -> None:
    t0 = datetime(2025, 6, 1, tzinfo=UTC)
    r1 = await make.create(make.execution("EXr1", created_at=t0))
    r2 = await make.create(make.execution("EXr2", created_at=t0 + timedelta(minutes=1)))
    r3 = await make.create(make.execution("EXr3", created_at=t0 + timedelta(minutes=2)))
    # two roots created at the same instant: ties are broken by id, descending
    r4a = await make.create(make.execution("EXr4a", created_at=t0 + timedelta(minutes=3)))
    r4b = await make.create(make.execution("EXr4b", created_at=t0 + timedelta(minutes=3)))
    await make.create(make.execution("EXelsewhere", flow_id="flow-2", created_at=t0 + timedelta(hours=1)))
    c1 = await make.create(make.execution("EXc1", parent=r2, created_at=t0 + timedelta(hours=2)))
    await make.create(make.execution("EXc2", parent=c1, created_at=t0 + timedelta(hours=2)))
    await make.create(make.execution("EXc3", parent=r2, created_at=t0 + timedelta(hours=2)))
    await make.create(make.execution("EXc4", parent=r3, created_at=t0 + timedelta(hours=2)))

    page = await backend.executions.list_roots("flow-1", limit=10, after=None)
    assert [(r.execution.id, r.levels, r.total_nested) for r in page] == [
        ("EXr4b", 0, 0),
        ("EXr4a", 0, 0),
        ("EXr3", 1, 1),
        ("EXr2", 2, 3),
        ("EXr1", 0, 0),
    ]
    assert page[0].execution == await backend.executions.get(r4b.id)

    first = await backend.executions.list_roots("flow-1", limit=2, after=None)
    assert [r.execution.id for r in first] == ["EXr4b", "EXr4a"]
    last = first[-1].execution
    rest = await backend.executions.list_roots("flow-1", limit=2, after=last.created_at, after_id=last.id)
    assert [r.execution.id for r in rest] == ["EXr3", "EXr2"]
    last = rest[-1].execution
    tail = await backend.executions.list_roots("flow-1", limit=2, after=last.created_at, after_id=last.id)
    assert [r.execution.id for r in tail] == ["EXr1"]

    # ``after`` alone (upstream's cursor) skips everything created at that instant
    older = await backend.executions.list_roots("flow-1", limit=10, after=r4a.created_at)
    assert [r.execution.id for r in older] == ["EXr3", "EXr2", "EXr1"]
    assert await backend.executions.list_roots("flow-3", limit=10, after=None) == []
    assert r1.id and r4b.id


async def test_children_in_creation_order(backend: Any, make: Any) -> None:
    root = await make.create()
    later = await make.create(
        make.execution("EXlater", parent=root, created_at=datetime(2025, 2, 2, tzinfo=UTC))
    )
    earlier = await make.create(
        make.execution("EXearlier", parent=root, created_at=datetime(2025, 2, 1, tzinfo=UTC))
    )
    await make.create(make.execution("EXgrand", parent=later))
    assert [c.id for c in await backend.executions.children(root.id)] == [earlier.id, later.id]
    assert await backend.executions.children("EXnone") == []


async def test_count_by_status(backend: Any, make: Any) -> None:
    assert await backend.executions.count_by_status() == {s.value: 0 for s in ExecutionStatus}
    await make.create()
    await make.running()
    ex = await make.running()
    await backend.executions.set_status(ex.id, StatusChange(S.FAILED, ALL))
    counts = await backend.executions.count_by_status()
    assert counts == {"created": 1, "running": 1, "paused": 0, "completed": 0, "failed": 1, "stopped": 0}


async def test_control_defaults_and_updates(backend: Any, make: Any) -> None:
    ex = await make.create()
    assert await backend.executions.get_control(ex.id) == Control()

    paused = await backend.executions.update_control(ex.id, state="pause", reason="look")
    assert paused == Control(state="pause", reason="look", version=1)
    bp = await backend.executions.update_control(ex.id, breakpoints=["n2", "n1", "n2"])
    assert bp.breakpoints == ("n2", "n1") and bp.state == "pause" and bp.version == 2
    stepped = await backend.executions.update_control(ex.id, bump_step=True)
    stepped = await backend.executions.update_control(ex.id, bump_step=True)
    assert stepped.step_seq == 2 and stepped.version == 4
    assert (await backend.executions.update_control(ex.id, step_seq=10)).step_seq == 10
    assert await backend.executions.get_control(ex.id) == Control(
        state="pause", reason="look", breakpoints=("n2", "n1"), step_seq=10, version=5
    )


async def test_control_refuses_bad_changes(backend: Any, make: Any) -> None:
    ex = await make.create()
    with pytest.raises(InvalidInput):
        await backend.executions.update_control(ex.id, colour="red")
    with pytest.raises(InvalidInput):
        await backend.executions.update_control(ex.id, state="fly")
    stopped = await backend.executions.update_control(ex.id, state="stop", reason="enough")
    assert stopped.state == "stop"
    # stop is final: a late pause (the engine's own, racing the stop) changes neither state nor reason
    late = await backend.executions.update_control(ex.id, state="pause", reason="breakpoint", bump_step=True)
    assert (late.state, late.reason, late.step_seq, late.version) == ("stop", "enough", 1, 2)
    assert (await backend.executions.update_control(ex.id, state="stop", reason="again")).reason == "again"
    with pytest.raises(ExecutionNotFound):
        await backend.executions.get_control("EXmissing")
    with pytest.raises(ExecutionNotFound):
        await backend.executions.update_control("EXmissing", state="pause")


async def test_concurrent_step_bumps_are_not_lost(backend: Any, make: Any) -> None:
    ex = await make.create()
    await asyncio.gather(*(backend.executions.update_control(ex.id, bump_step=True) for _ in range(8)))
    control = await backend.executions.get_control(ex.id)
    assert control.step_seq == 8 and control.version == 8


async def test_watch_control_gives_the_current_control_then_each_change(backend: Any, make: Any) -> None:
    ex = await make.create()
    await backend.executions.update_control(ex.id, breakpoints=["n1"])
    async with backend.executions.watch_control(ex.id) as controls:
        async with asyncio.timeout(5):  # far below the backends' poll interval: woken, not polled
            assert controls.latest.breakpoints == ("n1",) and controls.latest.version == 1

            async def change() -> None:
                await asyncio.sleep(0.05)
                await backend.executions.update_control(ex.id, state="pause", reason="user")

            task = asyncio.create_task(change())
            second = await controls.changed()
            await task
            assert second is not None
            assert (second.state, second.reason, second.version) == ("pause", "user", 2)
            assert controls.latest == second

            await backend.executions.update_control(ex.id, state="run")
            seen = aiter(controls)
            assert await anext(seen) == second  # iterating starts from the latest control
            third = await anext(seen)
            assert third.state == "run" and third.version == 3


async def test_watch_control_changed_returns_none_when_nothing_changes_in_time(
    backend: Any, make: Any
) -> None:
    ex = await make.create()
    async with backend.executions.watch_control(ex.id) as controls:
        assert await controls.changed(0.05) is None
        assert await controls.changed(0) is None
        assert controls.latest.version == 0


async def test_start_moves_a_waiting_control_to_run_once_and_wakes_its_watch(backend: Any, make: Any) -> None:
    ex = make.execution()
    await backend.executions.create(
        ex, make.created(ex), control=Control(state="wait", breakpoints=("b1", "b2"))
    )
    waiting = await backend.executions.get_control(ex.id)
    assert (waiting.state, waiting.breakpoints, waiting.version) == ("wait", ("b1", "b2"), 0)
    async with backend.executions.watch_control(ex.id) as controls:
        async with asyncio.timeout(5):  # woken, not polled
            task = asyncio.create_task(controls.changed())
            await asyncio.sleep(0.02)
            assert await backend.executions.start(ex.id) is True
            started = await task
    assert started is not None and (started.state, started.version) == ("run", 1)
    assert started.breakpoints == ("b1", "b2")
    assert await backend.executions.start(ex.id) is False  # not waiting any more: nothing changes
    assert (await backend.executions.get_control(ex.id)).version == 1
    assert (await backend.executions.get(ex.id)).status is ExecutionStatus.CREATED  # the worker's move


async def test_start_changes_nothing_unless_the_execution_waits(backend: Any, make: Any) -> None:
    child = await make.create()  # created without a control: `run` (children start by themselves)
    assert await backend.executions.start(child.id) is False
    assert (await backend.executions.get_control(child.id)).version == 0
    stopped = make.execution()
    await backend.executions.create(stopped, make.created(stopped), control=Control(state="wait"))
    await backend.executions.update_control(stopped.id, state="stop", reason="user")
    assert await backend.executions.start(stopped.id) is False  # stop is final
    assert (await backend.executions.get_control(stopped.id)).state == "stop"
    assert await backend.executions.start("EXmissing") is False


async def test_start_checks_owner_status_and_that_it_is_a_root(backend: Any, make: Any) -> None:
    async def waiting(ex: Any) -> Any:
        await backend.executions.create(ex, make.created(ex), control=Control(state="wait"))
        return ex

    mine = await waiting(make.execution(owner_id="alice"))
    assert await backend.executions.start(mine.id, owner_id="bob") is False
    assert (await backend.executions.get_control(mine.id)).state == "wait"
    assert await backend.executions.start(mine.id, owner_id="alice") is True

    root = await make.create()
    child = await waiting(make.execution(parent=root))
    assert await backend.executions.start(child.id) is False

    moved = await waiting(make.execution())
    await backend.executions.set_status(moved.id, StatusChange(S.RUNNING, frozenset({S.CREATED})))
    assert await backend.executions.start(moved.id) is False
    assert (await backend.executions.get_control(moved.id)).state == "wait"


async def test_watch_control_current_picks_up_a_change_once_signalled(backend: Any, make: Any) -> None:
    ex = await make.create()
    async with backend.executions.watch_control(ex.id) as controls:
        assert (await controls.current()).version == 0
        await backend.executions.update_control(ex.id, state="pause")
        async with asyncio.timeout(5):
            while (await controls.current()).version == 0:  # once the wake-up has arrived
                await asyncio.sleep(0.01)
        assert (controls.latest.state, controls.latest.version) == ("pause", 1)


async def test_watch_control_of_a_missing_execution(backend: Any) -> None:
    with pytest.raises(ExecutionNotFound):
        async with backend.executions.watch_control("EXmissing"):
            pass


async def test_created_before_lists_only_old_rows_still_in_created(backend: Any, make: Any) -> None:
    base = datetime(2025, 6, 1, tzinfo=UTC)
    old_a = await make.create(make.execution(created_at=base))
    old_b = await make.create(make.execution(created_at=base + timedelta(seconds=1)))
    started = await make.create(make.execution(created_at=base + timedelta(seconds=2)))
    await backend.executions.set_status(
        started.id, StatusChange(ExecutionStatus.RUNNING, frozenset({ExecutionStatus.CREATED}))
    )
    await make.create(make.execution(created_at=base + timedelta(hours=1)))  # too recent
    cutoff = base + timedelta(minutes=1)
    found = await backend.executions.created_before(cutoff, limit=10)
    assert [e.id for e in found] == [old_a.id, old_b.id]  # oldest first, not the running one
    assert [e.id for e in await backend.executions.created_before(cutoff, limit=1)] == [old_a.id]
    assert await backend.executions.created_before(base, limit=10) == []
