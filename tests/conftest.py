"""Shared fixtures: a scrubbed environment and PostgreSQL databases for the tests that need one.

PostgreSQL is expected at 127.0.0.1:5432 (user ``postgres``, trust auth; ``CHAINGRAPH_TEST_PG_URL``
overrides). When it is not answering, ``scripts/ensure-postgres`` starts (or installs) it. If it
still cannot be reached the PostgreSQL tests fail under ``CI=true`` and are skipped loudly
otherwise. Every test gets its own database cloned from a migrated template (dropped in the
background, off the test's critical path). ``sqlite_url`` is a migrated SQLite file of the test's
own, and ``backend`` runs a test against the memory, SQLite and PostgreSQL backends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent

for _name in [k for k in os.environ if k.startswith("CHAINGRAPH_") and not k.startswith("CHAINGRAPH_TEST_")]:
    os.environ.pop(_name)

PG_ADMIN_URL = os.environ.get("CHAINGRAPH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_db(url: str, db: str) -> str:
    return url.rsplit("/", 1)[0] + f"/{db}"


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    if not _reachable(PG_ADMIN_URL):
        subprocess.run([str(ROOT / "scripts" / "ensure-postgres")], check=False, timeout=600)
    if not _reachable(PG_ADMIN_URL):
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL} and could not be started"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return PG_ADMIN_URL


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str, worker_id: str) -> Iterator[str]:
    """A database with the application schema at head, cloned by every test (one per xdist worker)."""
    from chaingraph_executor.backends.sql import migrate

    name = f"cgx_template_{worker_id}_{os.getpid()}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    # fixtures may be set up inside a running event loop: migrate on a thread of its own
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, migrate(_with_db(pg_admin_url, name))).result()
    yield name
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _pg_dropper() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    """Drops per-test databases in the background (a DROP DATABASE takes most of a second);
    the session waits for them at the end."""
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="pg-drop") as pool:
        yield pool


@pytest.fixture
def pg_url(
    pg_admin_url: str, pg_template: str, _pg_dropper: concurrent.futures.ThreadPoolExecutor
) -> Iterator[str]:
    name = f"cgx_t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        yield _with_db(pg_admin_url, name)
    finally:
        _pg_dropper.submit(_drop_database, pg_admin_url, name)


# ------------------------------------------------------------------------------------ SQLite


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; every ``sqlite_url`` starts as a copy of it."""
    from chaingraph_executor.backends.sql import migrate

    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, migrate(f"sqlite:///{path}")).result()
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "db" / "app.sqlite"
    path.parent.mkdir()
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


# ------------------------------------------------------------------------- backend contracts

# Long polls, so that a wake-up that never arrives shows up as a timeout instead of a slow pass.
CONTRACT_POLL_S = 30.0


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend_url(backend_kind: str, request: pytest.FixtureRequest) -> str | None:
    if backend_kind == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    if backend_kind == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return None


@pytest.fixture
async def backend(backend_kind: str, backend_url: str | None) -> AsyncIterator[Any]:
    """All stores of one backend (``MemoryBackend`` or ``SqlBackend``), entered."""
    from chaingraph_executor.backends.memory import MemoryBackend
    from chaingraph_executor.backends.sql import SqlBackend

    if backend_url is None:
        async with MemoryBackend(
            poll_interval_s=CONTRACT_POLL_S, control_poll_interval_s=CONTRACT_POLL_S
        ) as memory:
            yield memory
        return
    async with SqlBackend(
        backend_url, poll_interval_s=CONTRACT_POLL_S, control_poll_interval_s=CONTRACT_POLL_S
    ) as sql:
        yield sql
