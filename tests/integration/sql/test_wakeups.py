"""Wake-ups are hints, never the only way to deliver: a write without a notification is found by
the poll; a killed PostgreSQL listener reconnects without losing events; NOTIFY crosses
processes; nothing is announced before (or without) a commit."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import insert

from chaingraph_executor.backends.sql import SqlBackend
from chaingraph_executor.backends.sql.codec import encode_data
from chaingraph_executor.backends.sql.database import Database
from chaingraph_executor.backends.sql.events import SqlEventLog
from chaingraph_executor.backends.sql.notify import LocalNotifier, PgNotifier
from chaingraph_executor.backends.sql.tables import events
from chaingraph_executor.backends.subscription import CONTROL_CHANNEL, EVENTS_CHANNEL
from chaingraph_executor.domain.events import ExecutionEvent
from chaingraph_executor.errors import BackendUnavailable
from chaingraph_executor.testing import new_root_execution


def node_events(start: int, count: int) -> list[ExecutionEvent]:
    return [
        ExecutionEvent(i, "node:started", datetime.now(UTC), {"i": i}) for i in range(start, start + count)
    ]


async def insert_silently(db: Database, execution_id: str, batch: list[ExecutionEvent]) -> None:
    """Write events the way a foreign writer might: no notification at all."""
    rows = [
        {
            "execution_id": execution_id,
            "seq": e.seq,
            "type": e.type,
            "ts": e.timestamp,
            "data": encode_data(e.data),
        }
        for e in batch
    ]
    async with db.begin() as tx:
        await tx.conn.execute(insert(events), rows)


async def test_a_write_without_notification_is_found_by_the_poll(sql_url: str) -> None:
    async with (
        SqlBackend(sql_url, poll_interval_s=0.2) as backend,
        backend.events.subscribe("EX1", 1, batch_timeout_ms=0) as batches,
    ):
        waiting = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.05)
        await insert_silently(backend.db, "EX1", node_events(0, 3))
        batch = await asyncio.wait_for(waiting, 3)
    assert [e.seq for e in batch] == [1, 2, 3]


async def test_no_wake_up_without_the_poll_when_nothing_notifies(sql_url: str) -> None:
    """The converse, to show the poll above is what delivered: with a long poll, nothing arrives."""
    async with (
        SqlBackend(sql_url, poll_interval_s=30) as backend,
        backend.events.subscribe("EX1", 1, batch_timeout_ms=0) as batches,
    ):
        waiting = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.05)
        await insert_silently(backend.db, "EX1", node_events(0, 1))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await backend.events.append("EX1", node_events(1, 1))  # a notified write wakes it
        batch = await asyncio.wait_for(waiting, 3)
    assert [e.seq for e in batch] == [1, 2]


async def test_a_rolled_back_write_wakes_nobody(sqlite_url: str) -> None:
    notifier = LocalNotifier()
    async with Database(sqlite_url) as db:
        with notifier.waiter(EVENTS_CHANNEL, "EX1") as waiter:
            with contextlib.suppress(RuntimeError):
                async with db.begin() as tx:
                    await notifier.notify(tx, EVENTS_CHANNEL, "EX1")
                    raise RuntimeError("abort")
            assert not waiter.is_set
            async with db.begin() as tx:
                await notifier.notify(tx, EVENTS_CHANNEL, "EX1")
                assert not waiter.is_set  # not before the commit
            assert waiter.is_set


@pytest.mark.postgres
async def test_notify_crosses_processes(pg_url: str) -> None:
    """Two backends (as an API and a worker would be): the writer's NOTIFY wakes the reader."""
    async with (
        SqlBackend(pg_url, poll_interval_s=30) as api,
        SqlBackend(pg_url, poll_interval_s=30) as worker,
        api.events.subscribe("EX1", 1, batch_timeout_ms=0) as batches,
    ):
        for i in range(3):
            await worker.events.append("EX1", node_events(i, 1))
            batch = await asyncio.wait_for(anext(batches), 3)
            assert [e.seq for e in batch] == [i + 1]


@pytest.mark.postgres
async def test_nothing_is_notified_before_the_commit(pg_url: str) -> None:
    async with PgNotifier(pg_url) as notifier, Database(pg_url) as db:
        with notifier.waiter(EVENTS_CHANNEL, "EX1") as waiter:
            async with db.begin() as tx:
                await notifier.notify(tx, EVENTS_CHANNEL, "EX1", "5")
                await asyncio.sleep(0.2)
                assert not waiter.is_set
            assert await waiter.wait(3)


async def _terminate(admin_url: str, pid: int) -> None:
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.postgres
async def test_a_killed_listener_reconnects_and_loses_no_event(pg_url: str, pg_admin_url: str) -> None:
    async with (
        Database(pg_url) as db,
        PgNotifier(pg_url, backoff_initial_s=0.3, probe_interval_s=0.5) as notifier,
        SqlBackend(pg_url) as writer,
    ):
        log = SqlEventLog(db, notifier, poll_interval_s=30)  # no help from the poll
        async with log.subscribe("EX1", 1, batch_timeout_ms=0) as batches:
            await writer.events.append("EX1", node_events(0, 1))
            got = [await asyncio.wait_for(anext(batches), 3)]

            old_pid = notifier.backend_pid
            assert old_pid is not None and notifier.connected
            # the subscriber is parked waiting for a wake-up (not about to read anyway)
            parked = asyncio.ensure_future(anext(batches))
            await asyncio.sleep(0.1)
            assert not parked.done()
            await _terminate(pg_admin_url, old_pid)
            async with asyncio.timeout(5):
                while notifier.connected:
                    await asyncio.sleep(0.01)
            # written while nobody listens: the reconnect wakes every waiter to re-read
            await writer.events.append("EX1", node_events(1, 2))
            got.append(await asyncio.wait_for(parked, 5))
            assert notifier.connected and notifier.backend_pid not in (None, old_pid)
            assert notifier.reconnects == 1

            await writer.events.append("EX1", node_events(3, 1))  # and live again
            got.append(await asyncio.wait_for(anext(batches), 3))
    assert [e.seq for b in got for e in b] == [1, 2, 3, 4]


@pytest.mark.postgres
async def test_the_listener_gives_up_when_the_database_never_answers(pg_admin_url: str) -> None:
    bad = pg_admin_url.rsplit("/", 1)[0] + "/cgx_does_not_exist"
    with pytest.raises(BackendUnavailable, match="cannot LISTEN"):
        async with PgNotifier(bad, connect_timeout_s=1.0):
            pass


@pytest.mark.postgres
async def test_a_notifier_listens_only_on_its_channels(pg_url: str) -> None:
    async with PgNotifier(pg_url, channels=(CONTROL_CHANNEL,)) as notifier, Database(pg_url) as db:
        with pytest.raises(RuntimeError, match="does not listen on chaingraph_events"):
            notifier.waiter(EVENTS_CHANNEL, "EX1")
        heard: list[tuple[str, str]] = []
        wake = notifier.hub.wake
        notifier.hub.wake = lambda channel, key: (heard.append((channel, key)), wake(channel, key))  # type: ignore[method-assign]
        with notifier.waiter(CONTROL_CHANNEL, "EX1") as control:
            async with db.begin() as tx:
                await notifier.notify(tx, EVENTS_CHANNEL, "EX1", "5")  # not delivered to this process
                await notifier.notify(tx, CONTROL_CHANNEL, "EX1")
            assert await control.wait(3)
        assert heard == [(CONTROL_CHANNEL, "EX1")]
    with pytest.raises(ValueError, match="channels must be"):
        PgNotifier(pg_url, channels=("other",))


async def test_a_control_watch_re_reads_at_the_interval_asked_for_when_no_wake_up_comes(sql_url: str) -> None:
    """A root waiting for START polls slowly (its wake-up normally ends the wait); a change that
    sends no wake-up to this process is still found, at the interval the waiter asks for."""
    async with (
        SqlBackend(sql_url, control_poll_interval_s=60) as watcher,
        SqlBackend(sql_url, listen=False) as other,  # its wake-ups stay in its own process
    ):
        ex, created = new_root_execution("EXpolled")
        await watcher.executions.create(ex, created)
        async with watcher.executions.watch_control(ex.id) as controls:
            await other.executions.update_control(ex.id, state="pause")
            async with asyncio.timeout(2):  # far below the watch's own 60 s poll and the 30 s wait
                changed = await controls.changed(30, poll_s=0.05)
        assert changed is not None and changed.state == "pause"
