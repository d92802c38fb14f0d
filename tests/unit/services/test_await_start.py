"""Waiting for START on the control state (``orchestration.await_start``, docs/adr/0009): what ends
the wait, and a deadline that counts from the durable creation time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from chaingraph_executor.backends.memory import MemoryBackend
from chaingraph_executor.domain.execution import Execution, ExecutionStatus
from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.ports import Control
from chaingraph_executor.services.orchestration import Ports, await_start, fail_before_run
from chaingraph_executor.testing import new_root_execution

TIMEOUT_S = 30.0


@pytest.fixture
async def ports() -> AsyncIterator[Ports]:
    # a long poll: anything that returns quickly below was woken, not polled
    async with MemoryBackend(control_poll_interval_s=60) as backend:
        yield Ports(backend.flows, backend.executions, backend.events, builtin_registry())


async def _root(ports: Ports, *, age_s: float = 0.0, state: str = "wait") -> Execution:
    stamp = datetime.now(UTC) - timedelta(seconds=age_s)
    ex, created = new_root_execution(f"EX{stamp.timestamp()}", created_at=stamp)
    await ports.executions.create(ex, created, control=Control(state=state))
    return ex


async def _wait(ports: Ports, ex: Execution, timeout_s: float = TIMEOUT_S) -> Control | None:
    async with ports.executions.watch_control(ex.id) as controls:
        return await await_start(ports, ex.id, controls, timeout_s)


async def _types(ports: Ports, ex: Execution) -> list[str]:
    return [e.type for e in await ports.events.read(ex.id, 0, limit=100)]


async def test_a_started_execution_does_not_wait(ports: Ports) -> None:
    ex = await _root(ports, state="run")
    async with asyncio.timeout(1):
        control = await _wait(ports, ex)
    assert control is not None and control.state == "run"


async def test_start_ends_the_wait(ports: Ports) -> None:
    ex = await _root(ports)
    waiting = asyncio.create_task(_wait(ports, ex))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    assert await ports.executions.start(ex.id)
    async with asyncio.timeout(2):
        control = await waiting
    assert control is not None and (control.state, control.version) == ("run", 1)
    assert (await ports.executions.get(ex.id)).status is ExecutionStatus.CREATED  # begin_run moves it


async def test_stop_ends_the_wait_with_one_terminal_event(ports: Ports) -> None:
    ex = await _root(ports)
    waiting = asyncio.create_task(_wait(ports, ex))
    await asyncio.sleep(0.05)
    await ports.executions.update_control(ex.id, state="stop", reason="not needed")
    # the API ends it too (compare-and-set from `created`): only one of the two writes
    api_won = await fail_before_run(
        ports,
        ex,
        "not needed",
        status=ExecutionStatus.STOPPED,
        expected=frozenset({ExecutionStatus.CREATED}),
    )
    async with asyncio.timeout(2):
        assert await waiting is None
    assert api_won
    assert await _types(ports, ex) == ["execution:created", "flow:cancelled"]
    ended = await ports.executions.get(ex.id)
    assert ended is not None and (ended.status, ended.error_message) == (
        ExecutionStatus.STOPPED,
        "not needed",
    )


async def test_the_waiting_side_ends_a_stop_the_api_did_not_finish(ports: Ports) -> None:
    ex = await _root(ports)
    await ports.executions.update_control(ex.id, state="stop", reason="shutting down")
    async with asyncio.timeout(2):
        assert await _wait(ports, ex) is None
    assert await _types(ports, ex) == ["execution:created", "flow:cancelled"]
    assert (await ports.executions.get(ex.id)).status is ExecutionStatus.STOPPED


async def test_the_deadline_counts_from_creation_not_from_the_wait(ports: Ports) -> None:
    # created 29.8 s ago with a 30 s timeout: a wait that starts now (say, re-run after a crash)
    # has 0.2 s left, not 30
    ex = await _root(ports, age_s=TIMEOUT_S - 0.2)
    async with asyncio.timeout(5):
        assert await _wait(ports, ex) is None
    assert await _types(ports, ex) == ["execution:created", "flow:failed"]
    failed = await ports.executions.get(ex.id)
    assert failed is not None and failed.status is ExecutionStatus.FAILED
    assert failed.error_message == "Execution start timeout - START_SIGNAL not received within 30 seconds"


async def test_a_wait_picked_up_after_its_deadline_fails_at_once(ports: Ports) -> None:
    ex = await _root(ports, age_s=TIMEOUT_S + 60)
    async with asyncio.timeout(1):
        assert await _wait(ports, ex) is None
    assert (await ports.executions.get(ex.id)).status is ExecutionStatus.FAILED


async def test_an_execution_that_already_ended_is_not_touched(ports: Ports) -> None:
    ex = await _root(ports)
    await fail_before_run(ports, ex, "enqueue failed")
    before = await _types(ports, ex)
    async with asyncio.timeout(1):
        assert await _wait(ports, ex) is None
    assert await _types(ports, ex) == before == ["execution:created", "flow:failed"]
