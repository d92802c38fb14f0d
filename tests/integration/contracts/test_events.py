"""EventLog contract (memory, SQLite, PostgreSQL): batches, duplicate seqs, reads, and
subscriptions — catch-up then live, exact resumption from any seq, the batch size cap, batch
timeouts, the end after the terminal event (whatever the type filter), per-subscriber cursors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from chaingraph_executor.domain.events import ErrorInfo, EventType, ExecutionEvent
from chaingraph_executor.domain.execution import ExecutionStatus
from chaingraph_executor.errors import Conflict, InvalidInput
from chaingraph_executor.ports import StatusChange

S = ExecutionStatus
NODE_STARTED = EventType.NODE_STARTED.value
NODE_COMPLETED = EventType.NODE_COMPLETED.value


async def test_append_and_read_round_trip(backend: Any) -> None:
    stamp = datetime(2025, 5, 6, 7, 8, 9, 10, tzinfo=timezone(timedelta(hours=2)))
    data = {
        "node": {"id": "n1", "ports": [{"at": stamp}, {"error": ErrorInfo("x", "ValueError")}]},
        "tuple": (1, 2),
        "text": 'héllo \u2603 "quoted" \\ back\nslash',
        "nested": {"empty": {}, "list": [], "none": None, "flag": False, "num": 1.5},
    }
    batch = [ExecutionEvent(0, NODE_STARTED, stamp, data), ExecutionEvent(1, NODE_COMPLETED, stamp, {})]
    await backend.events.append("EX1", batch)

    got = await backend.events.read("EX1", 0, limit=10)
    assert [(e.seq, e.index, e.type) for e in got] == [(1, 0, NODE_STARTED), (2, 1, NODE_COMPLETED)]
    assert got[0].timestamp == stamp and got[0].timestamp.tzinfo is not None
    assert got[0].data == {**data, "tuple": [1, 2]}
    assert got[0].data["node"]["ports"][0]["at"] == stamp
    assert got[0].data["node"]["ports"][1]["error"] == ErrorInfo("x", "ValueError")
    assert await backend.events.last_seq("EX1") == 2
    assert await backend.events.last_seq("EXnone") == -1
    assert await backend.events.read("EXnone", 0, limit=10) == []


async def test_unusual_payload_values_survive(backend: Any) -> None:
    weird = {"nan": float("nan"), "inf": float("inf"), "big": 10**30, "key with \u0000": "nul \u0000 char"}
    await backend.events.append("EX1", [ExecutionEvent(0, NODE_STARTED, datetime.now(UTC), weird)])
    (got,) = await backend.events.read("EX1", 0, limit=1)
    assert got.data["nan"] != got.data["nan"]
    assert got.data["inf"] == float("inf")
    assert {k: v for k, v in got.data.items() if k != "nan"} == {k: v for k, v in weird.items() if k != "nan"}


async def test_read_from_seq_with_limit_and_types(backend: Any, make: Any) -> None:
    await backend.events.append("EX1", make.events(0, 10))
    await backend.events.append("EX1", make.events(10, 5, NODE_COMPLETED))
    assert [e.seq for e in await backend.events.read("EX1", 4, limit=3)] == [4, 5, 6]
    assert [e.seq for e in await backend.events.read("EX1", -5, limit=2)] == [1, 2]
    completed = await backend.events.read("EX1", 0, limit=100, types=frozenset({NODE_COMPLETED}))
    assert [e.seq for e in completed] == [11, 12, 13, 14, 15]
    assert [
        e.seq for e in await backend.events.read("EX1", 12, limit=2, types=frozenset({NODE_COMPLETED}))
    ] == [
        12,
        13,
    ]
    assert await backend.events.read("EX1", 0, limit=10, types=frozenset({"nope"})) == []
    assert await backend.events.read("EX1", 0, limit=10, types=frozenset()) == []


async def test_duplicate_seqs_are_refused_and_a_batch_is_atomic(backend: Any, make: Any) -> None:
    await backend.events.append("EX1", make.events(0, 5))
    with pytest.raises(Conflict):
        await backend.events.append("EX1", make.events(4, 3))  # overlaps seq 5
    with pytest.raises(Conflict):
        await backend.events.append("EX1", make.events(7, 1) + make.events(7, 1))  # within the batch
    assert await backend.events.last_seq("EX1") == 5
    await backend.events.append("EX1", [])
    await backend.events.append("EX1", make.events(5, 2))
    assert [e.seq for e in await backend.events.read("EX1", 0, limit=100)] == [1, 2, 3, 4, 5, 6, 7]


async def test_subscribe_catches_up_then_goes_live_then_ends(backend: Any, make: Any) -> None:
    ex = await make.running()
    await backend.events.append(ex.id, make.events(0, 5))
    async with backend.events.subscribe(ex.id, 0, batch_timeout_ms=0) as batches:

        async def produce() -> None:
            for start in range(5, 20, 3):
                await asyncio.sleep(0.01)
                await backend.events.append(ex.id, make.events(start, 3))
            await make.complete(ex.id, 20)

        task = asyncio.create_task(produce())
        got = await make.collect(batches)
        await task
    assert make.seqs(got) == list(range(22))
    assert got[0][0].type == EventType.EXECUTION_CREATED.value
    assert got[-1][-1].type == EventType.FLOW_COMPLETED.value


async def test_every_from_seq_gives_exactly_the_missing_events(backend: Any, make: Any) -> None:
    ex = await make.running()
    await backend.events.append(ex.id, make.events(0, 6))
    await make.complete(ex.id, 6)  # seqs 0..7
    for from_seq in [-3, *range(9)]:
        async with backend.events.subscribe(ex.id, from_seq, batch_size=3, batch_timeout_ms=0) as batches:
            got = await make.collect(batches)
        assert make.seqs(got) == list(range(max(from_seq, 0), 8)), from_seq


async def test_resuming_while_live_gives_no_gap_and_no_duplicate(backend: Any, make: Any) -> None:
    ex = await make.running()
    await backend.events.append(ex.id, make.events(0, 4))
    async with backend.events.subscribe(ex.id, 0, batch_size=2, batch_timeout_ms=0) as batches:
        first = await anext(batches)
        second = await anext(batches)
    resume_at = second[-1].seq + 1  # what a client sends as lastEventId + 1
    await backend.events.append(ex.id, make.events(4, 2))
    await make.complete(ex.id, 6)
    async with backend.events.subscribe(ex.id, resume_at, batch_timeout_ms=0) as batches:
        rest = await make.collect(batches)
    assert make.seqs([first, second, *rest]) == list(range(8))


async def test_batch_size_is_a_cap(backend: Any, make: Any) -> None:
    ex = await make.running()
    for start in range(0, 250, 50):
        await backend.events.append(ex.id, make.events(start, 50))
    await make.complete(ex.id, 250)
    async with backend.events.subscribe(ex.id, 0, batch_size=7, batch_timeout_ms=1000) as batches:
        got = await make.collect(batches)
    assert all(1 <= len(b) <= 7 for b in got)
    assert make.seqs(got) == list(range(252))
    assert sum(len(b) == 7 for b in got) >= 35  # a catch-up fills its batches

    with pytest.raises(InvalidInput):
        backend.events.subscribe(ex.id, 0, batch_size=0)


async def test_batch_timeout_zero_sends_each_event_at_once(backend: Any, make: Any) -> None:
    ex = await make.running()
    async with backend.events.subscribe(ex.id, 1, batch_size=100, batch_timeout_ms=0) as batches:
        async with asyncio.timeout(5):
            for i in range(3):
                await backend.events.append(ex.id, make.events(i, 1))
                batch = await anext(batches)
                assert [e.seq for e in batch] == [i + 1]


async def test_batch_timeout_collects_events_into_one_batch(backend: Any, make: Any) -> None:
    ex = await make.running()
    async with backend.events.subscribe(ex.id, 1, batch_size=100, batch_timeout_ms=600) as batches:
        async with asyncio.timeout(5):
            waiting = asyncio.ensure_future(anext(batches))
            await asyncio.sleep(0.05)
            for i in range(3):
                await backend.events.append(ex.id, make.events(i, 1))
            batch = await waiting
    assert [e.seq for e in batch] == [1, 2, 3]


async def test_batch_timeout_does_not_delay_a_full_batch(backend: Any, make: Any) -> None:
    ex = await make.running()
    async with backend.events.subscribe(ex.id, 1, batch_size=5, batch_timeout_ms=60_000) as batches:
        async with asyncio.timeout(5):
            await backend.events.append(ex.id, make.events(0, 12))
            assert [e.seq for e in await anext(batches)] == [1, 2, 3, 4, 5]
            assert [e.seq for e in await anext(batches)] == [6, 7, 8, 9, 10]
            await make.complete(ex.id, 12)
            assert [e.seq for e in await anext(batches)] == [11, 12, 13]  # the end flushes at once
            with pytest.raises(StopAsyncIteration):
                await anext(batches)


async def test_ends_after_the_terminal_event_even_when_filtered_out(backend: Any, make: Any) -> None:
    ex = await make.running()
    async with backend.events.subscribe(
        ex.id, 0, types=frozenset({NODE_COMPLETED}), batch_timeout_ms=0
    ) as batches:

        async def produce() -> None:
            await backend.events.append(ex.id, make.events(0, 3))
            await backend.events.append(ex.id, make.events(3, 2, NODE_COMPLETED))
            await asyncio.sleep(0.05)
            await make.complete(ex.id, 5)

        task = asyncio.create_task(produce())
        got = await make.collect(batches)
        await task
    assert make.seqs(got) == [4, 5]
    assert {e.type for b in got for e in b} == {NODE_COMPLETED}


async def test_type_filter_with_no_match_still_ends(backend: Any, make: Any) -> None:
    ex = await make.running()
    await backend.events.append(ex.id, make.events(0, 30))
    await make.complete(ex.id, 30)
    async with backend.events.subscribe(ex.id, 0, types=frozenset({"unknown:type"})) as batches:
        assert await make.collect(batches) == []


async def test_nothing_after_the_terminal_event_is_sent(backend: Any, make: Any) -> None:
    ex = await make.running()
    await backend.events.append(ex.id, [make.terminal(0, EventType.FLOW_CANCELLED.value)])
    await backend.events.append(ex.id, make.events(1, 2))  # a late writer; never shown
    async with backend.events.subscribe(ex.id, 0, batch_timeout_ms=0) as batches:
        got = await make.collect(batches)
    assert make.seqs(got) == [0, 1]


async def test_ends_when_the_row_is_terminal_without_a_terminal_event(backend: Any, make: Any) -> None:
    ex = await make.create()
    await backend.events.append(ex.id, make.events(0, 2))
    async with backend.events.subscribe(ex.id, 0, batch_timeout_ms=0) as batches:
        first = await asyncio.wait_for(anext(batches), 5)

        async def stop() -> None:
            await asyncio.sleep(0.05)
            await backend.executions.set_status(ex.id, StatusChange(S.STOPPED, frozenset({S.CREATED})))

        task = asyncio.create_task(stop())
        rest = await make.collect(batches)  # woken by the status change, not by the (long) poll
        await task
    assert make.seqs([first, *rest]) == [0, 1, 2]


async def test_subscribing_past_the_end_of_a_finished_stream_ends_at_once(backend: Any, make: Any) -> None:
    ex = await make.running()
    await make.complete(ex.id, 0)
    async with backend.events.subscribe(ex.id, 50) as batches:
        assert await make.collect(batches) == []


async def test_subscribers_have_their_own_cursors(backend: Any, make: Any) -> None:
    ex = await make.running()
    await backend.events.append(ex.id, make.events(0, 6))
    async with (
        backend.events.subscribe(ex.id, 0, batch_timeout_ms=0) as all_events,
        backend.events.subscribe(ex.id, 5, batch_timeout_ms=0) as from_five,
        backend.events.subscribe(ex.id, 3, types=frozenset({NODE_COMPLETED}), batch_timeout_ms=0) as filtered,
    ):
        await backend.events.append(ex.id, make.events(6, 2, NODE_COMPLETED))
        await make.complete(ex.id, 8)
        got_all, got_five, got_filtered = await asyncio.gather(
            make.collect(all_events), make.collect(from_five), make.collect(filtered)
        )
    assert make.seqs(got_all) == list(range(10))
    assert make.seqs(got_five) == [5, 6, 7, 8, 9]
    assert make.seqs(got_filtered) == [7, 8]


async def test_a_slow_subscriber_does_not_hold_up_another(backend: Any, make: Any) -> None:
    ex = await make.running()
    async with (
        backend.events.subscribe(ex.id, 0, batch_size=1, batch_timeout_ms=0) as slow,
        backend.events.subscribe(ex.id, 0, batch_size=50, batch_timeout_ms=0) as fast,
    ):
        assert [e.seq for e in await asyncio.wait_for(anext(slow), 5)] == [0]  # then never read again
        for start in range(0, 300, 100):
            await backend.events.append(ex.id, make.events(start, 100))
        await make.complete(ex.id, 300)
        got = await make.collect(fast)
        assert make.seqs(got) == list(range(302))
        # the slow one resumes where it stopped
        assert [e.seq for e in await anext(slow)] == [1]


async def test_a_hole_in_a_finished_stream_is_skipped(backend: Any, make: Any) -> None:
    ex = await make.running()
    await backend.events.append(ex.id, make.events(0, 2))
    await backend.events.append(ex.id, make.events(5, 2))  # seqs 3..5 never written
    await make.complete(ex.id, 7)
    async with backend.events.subscribe(ex.id, 0, batch_timeout_ms=0) as batches:
        got = await make.collect(batches)
    assert make.seqs(got) == [0, 1, 2, 6, 7, 8]


async def test_leaving_a_subscription_early_releases_it(backend: Any, make: Any) -> None:
    ex = await make.running()
    await backend.events.append(ex.id, make.events(0, 10))
    for _ in range(3):
        async with backend.events.subscribe(ex.id, 0, batch_size=2) as batches:
            assert len(await anext(batches)) == 2
    hub = getattr(backend.notifier, "hub", backend.notifier)
    assert hub.waiting == 0
