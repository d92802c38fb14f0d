"""Migrations: upgrade is idempotent, the status reports it, two processes may migrate at once on
PostgreSQL, and the migrated schema is exactly ``tables.metadata`` on both dialects."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from chaingraph_executor.backends.sql import migrate, schema_status
from chaingraph_executor.backends.sql.database import Database
from chaingraph_executor.backends.sql.migrate import VERSION_TABLE, head_revision
from chaingraph_executor.backends.sql.tables import metadata

APP_TABLES = {t.name for t in metadata.sorted_tables}


def _drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_pg_url(pg_admin_url: str, _pg_dropper: ThreadPoolExecutor) -> Iterator[str]:
    name = f"cgx_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _pg_dropper.submit(_drop, pg_admin_url, name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'not-yet' / 'app.sqlite'}"  # the directory is created too
    return str(request.getfixturevalue("empty_pg_url"))


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _diff(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrate_twice_is_a_no_op(empty_url: str) -> None:
    assert await schema_status(empty_url) == (None, head_revision())
    await migrate(empty_url)
    assert await schema_status(empty_url) == (head_revision(), head_revision())
    await migrate(empty_url)
    assert await schema_status(empty_url) == (head_revision(), head_revision())
    async with Database(empty_url) as db, db.connect() as conn:
        tables = await conn.run_sync(_tables)
    assert APP_TABLES | {VERSION_TABLE} <= tables


async def test_the_migrated_schema_matches_the_tables(empty_url: str) -> None:
    await migrate(empty_url)
    async with Database(empty_url) as db, db.connect() as conn:
        assert await conn.run_sync(_diff) == []


@pytest.mark.postgres
async def test_concurrent_migrations_on_postgresql(empty_pg_url: str) -> None:
    await asyncio.gather(*(migrate(empty_pg_url) for _ in range(4)))
    assert await schema_status(empty_pg_url) == (head_revision(), head_revision())


async def test_concurrent_migrations_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    await asyncio.gather(*(migrate(url) for _ in range(3)))
    assert await schema_status(url) == (head_revision(), head_revision())
