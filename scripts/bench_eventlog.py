"""Event log throughput on SQLite and PostgreSQL: append in batches while one subscriber reads
live, then a catch-up read of the whole stream. Prints figures; asserts nothing.

    .venv/bin/python scripts/bench_eventlog.py [--events 100000] [--batch 200] [--subscribers 1]
        [--pg-admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--skip-sqlite] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from chaingraph_executor.backends.sql import SqlBackend, migrate
from chaingraph_executor.backends.sql.database import libpq_url
from chaingraph_executor.domain.events import EventType, ExecutionEvent, created_event
from chaingraph_executor.domain.execution import Execution, ExecutionStatus
from chaingraph_executor.ports import StatusChange


def payload(i: int) -> dict[str, object]:
    """Roughly the size of a real ``node:completed`` event."""
    return {
        "node": {
            "id": f"node-{i % 50}",
            "type": "math.add",
            "title": "Add",
            "status": "completed",
            "inputs": {"a": i, "b": 2.5, "label": "some text value"},
            "outputs": {"result": i + 2.5},
        },
        "executionTime": 3,
        "at": datetime.now(UTC),
    }


async def run(url: str, label: str, n_events: int, batch: int, subscribers: int) -> None:
    async with SqlBackend(url, pool_size=max(4, subscribers + 2)) as backend:
        now = datetime.now(UTC)
        exec_id = "EXbench" + uuid.uuid4().hex[:12]
        execution = Execution(
            id=exec_id,
            flow_id="bench",
            owner_id="bench",
            status=ExecutionStatus.CREATED,
            created_at=now,
            updated_at=now,
            root_execution_id=exec_id,
        )
        created = created_event(
            execution_id=exec_id,
            flow_id="bench",
            flow_metadata={},
            owner_id="bench",
            root_execution_id=exec_id,
            parent_execution_id=None,
            execution_depth=0,
        )
        await backend.executions.create(execution, created)
        await backend.executions.set_status(
            exec_id, StatusChange(ExecutionStatus.RUNNING, frozenset({ExecutionStatus.CREATED}))
        )
        events = [ExecutionEvent(i, "node:completed", now, payload(i)) for i in range(n_events)]
        total = n_events + 2  # created + n + terminal

        async def consume(it: AsyncIterator[list[ExecutionEvent]]) -> int:
            seen = 0
            async for got in it:
                seen += len(got)
            return seen

        async with contextlib.AsyncExitStack() as stack:
            iterators = [
                await stack.enter_async_context(
                    backend.events.subscribe(exec_id, 0, batch_size=1000, batch_timeout_ms=0)
                )
                for _ in range(subscribers)
            ]
            start = time.perf_counter()
            readers = [asyncio.create_task(consume(it)) for it in iterators]
            for i in range(0, n_events, batch):
                await backend.events.append(exec_id, events[i : i + batch])
            terminal = ExecutionEvent(n_events, EventType.FLOW_COMPLETED.value, now, {"executionTime": 1})
            await backend.executions.finish(
                exec_id,
                StatusChange(ExecutionStatus.COMPLETED, frozenset({ExecutionStatus.RUNNING})),
                [terminal],
            )
            appended = time.perf_counter() - start
            counts = await asyncio.gather(*readers)
            live = time.perf_counter() - start
        assert all(c == total for c in counts), counts

        start = time.perf_counter()
        async with backend.events.subscribe(exec_id, 0, batch_size=1000, batch_timeout_ms=0) as it:
            caught_up = await consume(it)
        catch_up = time.perf_counter() - start
        assert caught_up == total

        print(
            f"{label:<10} {n_events:>7} events, batches of {batch}, {subscribers} live subscriber(s): "
            f"append {n_events / appended:>9,.0f} ev/s | append + live read {n_events / live:>9,.0f} ev/s | "
            f"catch-up read {n_events / catch_up:>9,.0f} ev/s"
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
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()

    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
            await migrate(url)
            await run(url, "SQLite", args.events, args.batch, args.subscribers)
    if not args.skip_postgres:
        async with scratch_pg(args.pg_admin_url) as url:
            await run(url, "PostgreSQL", args.events, args.batch, args.subscribers)


if __name__ == "__main__":
    asyncio.run(main())
