"""Shared fixtures: a scrubbed environment and PostgreSQL databases for the tests that need one.

PostgreSQL is expected at 127.0.0.1:5432 (user ``postgres``, trust auth; ``CHAINGRAPH_TEST_PG_URL``
overrides). When it is not answering, ``scripts/ensure-postgres`` starts (or installs) it. If it
still cannot be reached the PostgreSQL tests fail under ``CI=true`` and are skipped loudly
otherwise. Every test gets its own database cloned from a migrated template.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture
def pg_url(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    name = f"cgx_t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        yield _with_db(pg_admin_url, name)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
