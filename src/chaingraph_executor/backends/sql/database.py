"""The database handle: URL normalisation, the SQLAlchemy ``AsyncEngine`` and its tuning for
SQLite (WAL, busy timeout, foreign keys, ``BEGIN IMMEDIATE`` for writes) and PostgreSQL (a sized
pool, autocommit reads), plus write transactions with after-commit callbacks.

The hot one-statement paths bypass SQLAlchemy's pool, whose checkout costs more CPU than the
statement itself: on PostgreSQL they take autocommit connections from a driver-level pool
(psycopg_pool); on SQLite they share one autocommit aiosqlite connection (its thread runs their
statements one after another)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite
import psycopg
from psycopg.pq import ExecStatus
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import URL, event, exc, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from chaingraph_executor.errors import BackendUnavailable, InvalidInput

SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRES_DRIVER = "postgresql+psycopg"
_BEGIN_OPTION = "chaingraph_sqlite_begin"


def normalize_url(url: str | URL) -> URL:
    """``sqlite:///path`` → ``sqlite+aiosqlite``, ``postgresql://`` / ``postgres://`` →
    ``postgresql+psycopg``; anything else is refused."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except exc.ArgumentError as error:
        raise InvalidInput(f"invalid database URL: {error}") from None
    backend = parsed.get_backend_name()
    driver = parsed.get_driver_name() if "+" in parsed.drivername else ""
    if backend == "sqlite" and driver in ("", "aiosqlite", "pysqlite"):
        return parsed.set(drivername=SQLITE_DRIVER)
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername=POSTGRES_DRIVER)
    raise InvalidInput(f"unsupported database URL {parsed.drivername}:// (use sqlite:/// or postgresql://)")


def libpq_url(url: str | URL) -> str:
    """The URL in the form psycopg itself accepts (``postgresql://user:pw@host:port/db``)."""
    return normalize_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL (``None`` for in-memory databases)."""
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


class Transaction:
    """A write transaction: its connection plus callbacks that run once it has committed."""

    __slots__ = ("_after_commit", "conn")

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    def _committed(self) -> None:
        for callback in self._after_commit:
            callback()


class Database:
    """``async with Database(url) as db:`` owns the engine until the block exits.

    ``pool_size``/``max_overflow`` size the SQLAlchemy pool (transactions and the rest);
    ``driver_pool_size`` the PostgreSQL driver pool (every subscriber's reads, every append and the
    hot one-row statements). Connections are held only for one statement or transaction.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        pool_size: int = 10,
        max_overflow: int = 20,
        driver_pool_size: int = 5,
        pool_timeout_s: float = 30.0,
        pool_pre_ping: bool = False,
        busy_timeout_ms: int = 10_000,
        echo: bool = False,
    ) -> None:
        self.url = normalize_url(url)
        self._pool_size = pool_size
        self._max_overflow = max_overflow
        self._pool_timeout_s = pool_timeout_s
        self._pool_pre_ping = pool_pre_ping
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if is_sqlite(self.url) else None
        self._busy_timeout_ms = busy_timeout_ms
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._write_engine: AsyncEngine | None = None
        self._read_engine: AsyncEngine | None = None
        self._driver_pool_size = driver_pool_size
        self._driver_pool: AsyncConnectionPool[Any] | None = None
        self._driver_pool_opened = False
        self._sqlite_driver: aiosqlite.Connection | None = None
        self._sqlite_driver_lock = asyncio.Lock()

    @functools.cached_property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @functools.cached_property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("Database is not open: use 'async with Database(url)'")
        return self._engine

    async def __aenter__(self) -> Database:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def open(self) -> None:
        if self._engine is not None:
            return
        kwargs: dict[str, Any] = {
            "echo": self._echo,
            "pool_size": self._pool_size,
            "max_overflow": self._max_overflow,
            "pool_timeout": self._pool_timeout_s,
            "pool_pre_ping": self._pool_pre_ping,
        }
        if self.is_sqlite:
            path = sqlite_path(self.url)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            else:
                raise InvalidInput("SQLite needs a database file: sqlite:///path/to/file.sqlite")
            engine = create_async_engine(self.url, **kwargs)
            self._install_sqlite_hooks(engine)
            self._engine = engine
            self._write_engine = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            self._read_engine = engine
        else:
            kwargs["pool_recycle"] = 1800
            # UTC sessions: psycopg then returns datetimes in datetime.UTC (no conversion per row)
            kwargs["connect_args"] = {"options": "-c timezone=UTC"}
            engine = create_async_engine(self.url, **kwargs)
            self._engine = engine
            self._write_engine = engine
            self._read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._driver_pool = AsyncConnectionPool(
                libpq_url(self.url),
                min_size=self._driver_pool_size,
                max_size=self._driver_pool_size,
                kwargs={"autocommit": True, "options": "-c timezone=UTC"},
                # a wait this long means the database is down (statements take milliseconds)
                timeout=min(self._pool_timeout_s, 5.0),
                open=False,
                name="chaingraph-driver",
            )
            self._driver_pool_opened = False

    async def close(self) -> None:
        # closed for new work first: nothing may open a connection while this awaits
        engine, self._engine = self._engine, None
        self._write_engine = self._read_engine = None
        sqlite_driver, self._sqlite_driver = self._sqlite_driver, None
        pool, self._driver_pool = self._driver_pool, None
        if sqlite_driver is not None:
            await sqlite_driver.close()  # after the statements already queued on its thread
        if pool is not None and self._driver_pool_opened:
            await pool.close()
        if engine is not None:
            await engine.dispose()

    def _install_sqlite_hooks(self, engine: AsyncEngine) -> None:
        busy_timeout_ms = int(self._busy_timeout_ms)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            # Let SQLAlchemy emit BEGIN itself (below) instead of the driver's legacy mode.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                for pragma in _sqlite_pragmas(busy_timeout_ms):
                    cursor.execute(pragma)
            finally:
                cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Writes take the write lock up front (BEGIN IMMEDIATE), so busy_timeout applies and
            # no deferred transaction ever fails to upgrade its lock. Plain reads run without BEGIN.
            mode = conn.get_execution_options().get(_BEGIN_OPTION)
            if mode:
                conn.exec_driver_sql(f"BEGIN {mode}")

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Transaction]:
        """A write transaction: commits when the block exits normally, then runs the
        after-commit callbacks; rolls back on an exception."""
        engine = self._write_engine
        if engine is None:
            raise RuntimeError("Database is not open")
        async with self._writer_turn():
            try:
                async with engine.connect() as conn:
                    tx = Transaction(conn)
                    async with conn.begin():
                        yield tx
            except (exc.OperationalError, exc.InterfaceError) as error:
                raise _unavailable(error) from error
        tx._committed()

    @asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[Any]:
        """A psycopg ``AsyncConnection`` (autocommit) from the driver pool, for the hot paths where
        SQLAlchemy's per-statement overhead matters (PostgreSQL only). A connection error becomes
        ``BackendUnavailable`` (the pool replaces a broken connection)."""
        pool = self._driver_pool
        if pool is None:
            raise RuntimeError("Database is not open")
        if not self._driver_pool_opened:
            await pool.open(wait=False)  # safe to call again: concurrent first users all call it
            self._driver_pool_opened = True
        try:
            async with pool.connection() as driver:
                yield driver
        except (psycopg.OperationalError, PoolTimeout) as error:
            raise BackendUnavailable(f"database unavailable: {error}") from error

    @asynccontextmanager
    async def single_write(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one writing statement, which is its own transaction (autocommit): one
        round trip instead of BEGIN, statement, COMMIT. SQLite writers still queue on the lock."""
        async with self._writer_turn(), self.connect() as conn:
            yield conn

    def _writer_turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        # SQLite has one writer at a time: queue this process's writers here, where the next one
        # starts the moment the lock is free, rather than in SQLite's busy handler, which sleeps
        # in growing steps (up to 100 ms) between attempts.
        return self._write_lock if self._write_lock is not None else contextlib.nullcontext()

    async def driver_fetch(self, sql: str, params: Mapping[str, Any], *, write: bool = False) -> list[Any]:
        """Run one statement (text in the driver's own parameter style) on the driver and return
        its rows. ``write``: it changes data (autocommit; SQLite writers queue on the lock)."""
        if not self.is_sqlite:
            async with self.driver_connection() as driver, driver.cursor() as cur:
                await cur.execute(sql, params, prepare=True)
                result = cur.pgresult  # (cheaper than building cur.description)
                return list(await cur.fetchall()) if result and result.status == TUPLES_OK else []
        driver = await self.sqlite_driver()
        async with self._writer_turn() if write else contextlib.nullcontext():
            try:
                return list(await driver.execute_fetchall(sql, params))
            except sqlite3.OperationalError as error:
                raise BackendUnavailable(f"database unavailable: {error}") from error

    async def sqlite_driver(self) -> aiosqlite.Connection:
        """The shared autocommit aiosqlite connection of the hot paths (SQLite only; opened on
        first use). Its statements run one at a time on its thread; writers still queue on the
        process's writer lock (``driver_fetch(write=True)``)."""
        if self._sqlite_driver is None:
            path = sqlite_path(self.url)
            if path is None or self._engine is None:
                raise RuntimeError("Database is not open (or not a SQLite file)")
            async with self._sqlite_driver_lock:
                if self._sqlite_driver is None:
                    conn = await aiosqlite.connect(path, isolation_level=None)
                    for pragma in _sqlite_pragmas(int(self._busy_timeout_ms)):
                        await conn.execute(pragma)
                    if self._engine is None:  # closed while this connected: leave nothing open
                        await conn.close()
                        raise RuntimeError("Database is not open")
                    self._sqlite_driver = conn
        return self._sqlite_driver

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (autocommit on PostgreSQL, no BEGIN on SQLite)."""
        engine = self._read_engine
        if engine is None:
            raise RuntimeError("Database is not open")
        try:
            async with engine.connect() as conn:
                yield conn
        except (exc.OperationalError, exc.InterfaceError) as error:
            raise _unavailable(error) from error


TUPLES_OK = ExecStatus.TUPLES_OK


def _sqlite_pragmas(busy_timeout_ms: int) -> tuple[str, ...]:
    return (
        f"PRAGMA busy_timeout = {busy_timeout_ms}",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
    )


def _unavailable(error: exc.DBAPIError) -> BackendUnavailable:
    return BackendUnavailable(f"database unavailable: {error.orig or error}")
