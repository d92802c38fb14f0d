"""The run's event writer (``orchestration.EventWriter``): group commit, and handing the last events
over to the terminal write instead of writing them alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from chaingraph_executor.domain.events import EventType, ExecutionEvent, event
from chaingraph_executor.services.orchestration import EventWriter


class SlowLog:
    """An event log whose appends wait until released, recording each batch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.failing = False

    async def append(self, execution_id: str, events: Sequence[ExecutionEvent]) -> None:
        await self.release.wait()
        if self.failing:
            raise RuntimeError("database gone")
        self.batches.append([e.index for e in events])

    async def last_seq(self, execution_id: str) -> int:
        return max((i + 1 for b in self.batches for i in b), default=0)


def ev(index: int, type_: str = EventType.NODE_STARTED) -> ExecutionEvent:
    return event(index, type_, {"i": index})


async def test_the_first_event_goes_at_once_and_the_rest_are_gathered() -> None:
    log = SlowLog()
    log.release.clear()
    writer = EventWriter(log, "EX1")  # type: ignore[arg-type]
    writer.add(ev(0))
    await asyncio.sleep(0)  # the write of event 0 is in flight
    for i in range(1, 4):
        writer.add(ev(i))
    log.release.set()
    await writer.flush()
    assert log.batches == [[0], [1, 2, 3]]
    assert writer.written == 4


async def test_take_rest_hands_over_what_is_not_written_yet() -> None:
    log = SlowLog()
    log.release.clear()
    writer = EventWriter(log, "EX1")  # type: ignore[arg-type]
    writer.add(ev(0))
    await asyncio.sleep(0)
    writer.add(ev(1))
    writer.hold()  # as when the engine emits the terminal event
    writer.add(ev(2))
    rest = asyncio.create_task(writer.take_rest())
    await asyncio.sleep(0.01)
    assert not rest.done()  # it waits for the write in flight
    log.release.set()
    assert [e.index for e in await rest] == [1, 2]
    assert log.batches == [[0]]  # nothing written after the hold


async def test_flush_after_hold_writes_everything() -> None:
    log = SlowLog()
    writer = EventWriter(log, "EX1")  # type: ignore[arg-type]
    writer.hold()
    writer.add(ev(0))
    writer.add(ev(1))
    async with asyncio.timeout(2):
        await writer.flush()
    assert log.batches == [[0, 1]]


async def test_pause_and_resume_events_are_written_with_their_status_change_not_handed_over() -> None:
    log = SlowLog()
    seen: list[str] = []

    async def on_batch(batch: list[ExecutionEvent]) -> None:
        seen.extend(str(e.type) for e in batch)

    writer = EventWriter(log, "EX1", on_batch=on_batch)  # type: ignore[arg-type]
    writer.hold()
    writer.add(ev(0))
    writer.add(ev(1, EventType.FLOW_PAUSED))
    assert await writer.take_rest() == []
    assert log.batches == [[0, 1]] and EventType.FLOW_PAUSED in seen


async def test_a_failed_write_is_reported_and_nothing_after_it_is_written() -> None:
    log = SlowLog()
    log.failing = True  # every retry fails too (under a second of back-off in all)
    writer = EventWriter(log, "EX1")  # type: ignore[arg-type]
    writer.add(ev(0))
    with pytest.raises(RuntimeError, match="database gone"):
        await writer.flush()
    with pytest.raises(RuntimeError, match="database gone"):
        writer.add(ev(1))
    with pytest.raises(RuntimeError, match="database gone"):
        await writer.take_rest()
    assert log.batches == []


async def test_take_rest_hands_over_one_batch_at_most_and_writes_a_longer_backlog_first() -> None:
    log = SlowLog()
    writer = EventWriter(log, "EX1", max_batch=3)  # type: ignore[arg-type]
    writer.hold()
    for i in range(8):
        writer.add(ev(i))
    rest = await writer.take_rest()
    assert [e.index for e in rest] == [5, 6, 7]
    assert log.batches == [[0, 1, 2], [3, 4]]  # in order, in batches, before the handed-over rest
