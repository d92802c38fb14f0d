"""Schema migrations (Alembic, configured in code: no ``alembic.ini``).

``await migrate(url)`` upgrades to head; it is idempotent, and on PostgreSQL it holds a
transaction-scoped advisory lock so that processes starting together migrate one after the
other (PostgreSQL DDL is transactional: the second sees the finished schema and does nothing).
On SQLite the same serialisation comes from ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection

from chaingraph_executor.backends.sql.database import Database

VERSION_TABLE = "chaingraph_alembic_version"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock key: the bytes "cgmigrat" as a signed 64-bit integer
MIGRATION_LOCK_KEY = int.from_bytes(b"cgmigrat", "big", signed=True)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("no migrations found")
    return head


def _upgrade(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def _current(conn: Connection) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


async def migrate(url: str | URL) -> None:
    """Upgrade the application tables to the newest revision (a no-op when already there)."""
    async with Database(url, pool_size=1, max_overflow=0) as db, db.begin() as tx:
        await tx.conn.run_sync(_upgrade)


async def schema_status(url: str | URL) -> tuple[str | None, str]:
    """``(current revision or None when never migrated, head revision)``."""
    async with Database(url, pool_size=1, max_overflow=0) as db, db.connect() as conn:
        current = await conn.run_sync(_current)
    return current, head_revision()
