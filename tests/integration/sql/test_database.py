"""The database handle: URL forms, SQLite file setup, UTC timestamps, pool and error mapping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from chaingraph_executor.backends.sql.database import Database, libpq_url, normalize_url
from chaingraph_executor.backends.sql.tables import workers
from chaingraph_executor.errors import BackendUnavailable, InvalidInput


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///x/app.sqlite", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///x/app.sqlite", "sqlite+aiosqlite"),
        ("postgresql://u@h:5432/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
    ],
)
def test_urls_are_normalised(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "postgresql+asyncpg://u@h/db", "not a url"])
def test_unsupported_urls_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_url(bad)


def test_libpq_url_keeps_the_password() -> None:
    assert libpq_url("postgresql+psycopg://u:secret@h:5433/db") == "postgresql://u:secret@h:5433/db"


async def test_sqlite_is_set_up_for_concurrency(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "app.sqlite"
    async with Database(f"sqlite:///{path}") as db, db.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 10_000
    assert path.exists()


async def test_timestamps_come_back_aware_utc(sql_url: str) -> None:
    local = datetime(2025, 7, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=-5)))
    async with Database(sql_url) as db:
        async with db.begin() as tx:
            await tx.conn.execute(
                workers.insert().values(executor_id="w", started_at=local, heartbeat_at=local)
            )
        async with db.connect() as conn:
            stored = (await conn.execute(workers.select())).one()
    assert stored.started_at == local
    assert stored.started_at.tzinfo is UTC


async def test_an_unreachable_database_is_backend_unavailable(tmp_path: Path) -> None:
    async with Database("postgresql://nobody@127.0.0.1:1/none") as db:
        with pytest.raises(BackendUnavailable):
            async with db.connect() as conn:
                await conn.execute(text("SELECT 1"))


async def test_closing_leaves_no_driver_connection_behind(tmp_path: Path) -> None:
    """The hot paths' shared SQLite connection: a statement issued while the database closes is
    refused, instead of opening a new connection that nothing would ever close (its thread would
    later report into a closed event loop)."""
    db = Database(f"sqlite:///{tmp_path / 'app.sqlite'}")
    db.open()
    assert await db.driver_fetch("SELECT 1", {}) == [(1,)]
    closing = asyncio.create_task(db.close())
    await asyncio.sleep(0)  # the close has begun: it awaits the shared connection's close
    with pytest.raises(RuntimeError, match="not open"):
        await db.driver_fetch("SELECT 1", {})
    await closing
    assert db._sqlite_driver is None
