"""The shared subscription loop over each backend's event source: a seq that becomes visible
after a later one (a writer committing out of order) is waited for, and a hole that never fills
is skipped after the grace period rather than stalling the stream."""

from __future__ import annotations

import asyncio
from typing import Any

from chaingraph_executor.backends.subscription import Subscription


def subscription(backend: Any, execution_id: str, grace_s: float) -> Subscription:
    return Subscription(
        backend.events,
        backend.notifier,
        execution_id,
        0,
        batch_timeout_ms=0,
        poll_interval_s=30,
        gap_grace_s=grace_s,
    )


async def test_a_late_seq_is_waited_for(backend: Any, make: Any) -> None:
    ex = await make.running()
    await backend.events.append(ex.id, make.events(0, 2))
    await backend.events.append(ex.id, make.events(4, 2))  # seqs 3 and 4 are not there yet
    async with subscription(backend, ex.id, grace_s=30) as batches:
        got = [await asyncio.wait_for(anext(batches), 5)]
        assert make.seqs(got) == [0, 1, 2]
        waiting = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await backend.events.append(ex.id, make.events(2, 2))
        got.append(await asyncio.wait_for(waiting, 5))
        await make.complete(ex.id, 6)
        got += await make.collect(batches)
    assert make.seqs(got) == list(range(8))


async def test_a_hole_that_never_fills_is_skipped_after_the_grace_period(backend: Any, make: Any) -> None:
    ex = await make.running()
    await backend.events.append(ex.id, make.events(0, 2))
    await backend.events.append(ex.id, make.events(4, 2))
    async with subscription(backend, ex.id, grace_s=0.3) as batches:
        got = [await asyncio.wait_for(anext(batches), 5)]
        assert make.seqs(got) == [0, 1, 2]
        got.append(await asyncio.wait_for(anext(batches), 5))  # after the grace period
        assert make.seqs(got) == [0, 1, 2, 5, 6]
        await make.complete(ex.id, 6)
        got += await make.collect(batches)
    assert make.seqs(got) == [0, 1, 2, 5, 6, 7]
