"""Event log throughput on SQLite and PostgreSQL. Prints figures; asserts nothing.

For each database: one producer appends ``--events`` node events in batches of ``--batch`` and
finishes the execution (terminal event) while ``--subscribers`` live subscriptions read them;
the figure is events/s from the first append until every subscriber has seen the terminal event.
Then one catch-up subscription reads the whole stream again. On PostgreSQL it runs twice: all in
one process, and with the producer in its own process (a worker appending, an API reading).

    .venv/bin/python scripts/bench_eventlog.py [--events 100000] [--batch 200] [--subscribers 1]
        [--with-dates] [--pg-admin-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--skip-sqlite] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path

import psycopg
from psycopg import sql

from chaingraph_executor.backends.sql import SqlBackend, migrate
from chaingraph_executor.backends.sql.database import libpq_url
from chaingraph_executor.domain.events import EventType, ExecutionEvent
from chaingraph_executor.domain.execution import ExecutionStatus
from chaingraph_executor.ports import StatusChange
from chaingraph_executor.testing import new_root_execution


@dataclass(frozen=True)
class Load:
    events: int
    batch: int
    subscribers: int
    with_dates: bool


def payload(i: int, with_dates: bool) -> dict[str, object]:
    """Roughly the size and shape of a ``node:completed`` event. ``with_dates`` adds a datetime,
    which sends every event through the slower decoding path (as ``flow:started`` would)."""
    data: dict[str, object] = {
        "node": {
            "id": f"node-{i % 50}",
            "type": "math.add",
            "title": "Add",
            "status": "completed",
            "inputs": {"a": i, "b": 2.5, "label": "some text value"},
            "outputs": {"result": i + 2.5},
        },
        "executionTime": 3,
    }
    if with_dates:
        data["at"] = datetime.now(UTC)
    return data


async def create_execution(backend: SqlBackend) -> str:
    execution, created = new_root_execution(
        "EXbench" + uuid.uuid4().hex[:12], flow_id="bench", owner_id="bench"
    )
    await backend.executions.create(execution, created)
    await backend.executions.set_status(
        execution.id, StatusChange(ExecutionStatus.RUNNING, frozenset({ExecutionStatus.CREATED}))
    )
    return execution.id


def make_events(load: Load) -> list[ExecutionEvent]:
    now = datetime.now(UTC)
    return [ExecutionEvent(i, "node:completed", now, payload(i, load.with_dates)) for i in range(load.events)]


async def produce(backend: SqlBackend, exec_id: str, load: Load, events: list[ExecutionEvent]) -> None:
    now = datetime.now(UTC)
    for i in range(0, load.events, load.batch):
        await backend.events.append(exec_id, events[i : i + load.batch])
    terminal = ExecutionEvent(load.events, EventType.FLOW_COMPLETED.value, now, {"executionTime": 1})
    await backend.executions.finish(
        exec_id,
        StatusChange(ExecutionStatus.COMPLETED, frozenset({ExecutionStatus.RUNNING})),
        [terminal],
    )


def produce_in_process(url: str, exec_id: str, load: Load, go: ProcessEvent) -> None:
    async def main() -> None:
        events = make_events(load)
        async with SqlBackend(url) as backend:
            await asyncio.to_thread(go.wait)
            await produce(backend, exec_id, load, events)

    asyncio.run(main())


async def consume(it: AsyncIterator[list[ExecutionEvent]]) -> int:
    seen = 0
    async for got in it:
        seen += len(got)
    return seen


async def run(url: str, label: str, load: Load, separate: bool) -> None:
    async with SqlBackend(url, pool_size=max(4, load.subscribers + 2)) as backend:
        exec_id = await create_execution(backend)
        total = load.events + 2  # execution:created + the events + the terminal event
        events = make_events(load)
        ctx = multiprocessing.get_context("spawn")
        go = ctx.Event()
        producer = None
        if separate:
            producer = ctx.Process(target=produce_in_process, args=(url, exec_id, load, go))
            producer.start()
            await asyncio.sleep(2.0)  # let it import and connect before the clock starts
        async with contextlib.AsyncExitStack() as stack:
            iterators = [
                await stack.enter_async_context(
                    backend.events.subscribe(exec_id, 0, batch_size=1000, batch_timeout_ms=0)
                )
                for _ in range(load.subscribers)
            ]
            start = time.perf_counter()
            readers = [asyncio.create_task(consume(it)) for it in iterators]
            if producer is None:
                await produce(backend, exec_id, load, events)
            else:
                go.set()
            counts = await asyncio.gather(*readers)
            live = time.perf_counter() - start
        if producer is not None:
            await asyncio.to_thread(producer.join)
        assert all(c == total for c in counts), counts

        start = time.perf_counter()
        async with backend.events.subscribe(exec_id, 0, batch_size=1000, batch_timeout_ms=0) as it:
            caught_up = await consume(it)
        catch_up = time.perf_counter() - start
        assert caught_up == total

        where = "producer in its own process" if separate else "one process"
        where += ", payloads with dates" if load.with_dates else ""
        print(
            f"{label:<10} {load.events} events in batches of {load.batch}, "
            f"{load.subscribers} live subscriber(s), {where}\n"
            f"    append + live read {load.events / live:>9,.0f} ev/s"
            f"   catch-up read {load.events / catch_up:>9,.0f} ev/s"
        )


@contextlib.asynccontextmanager
async def scratch_pg(admin_url: str) -> AsyncIterator[str]:
    name = "cg_bench_" + uuid.uuid4().hex[:10]
    conninfo = libpq_url(admin_url)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = conninfo.rsplit("/", 1)[0] + "/" + name
    try:
        await migrate(url)
        yield url
    finally:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=1)
    parser.add_argument("--with-dates", action="store_true")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    load = Load(args.events, args.batch, args.subscribers, args.with_dates)

    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
            await migrate(url)
            await run(url, "SQLite", load, separate=False)
    if not args.skip_postgres:
        async with scratch_pg(args.pg_admin_url) as url:
            await run(url, "PostgreSQL", load, separate=False)
            await run(url, "PostgreSQL", load, separate=True)


if __name__ == "__main__":
    asyncio.run(main())
