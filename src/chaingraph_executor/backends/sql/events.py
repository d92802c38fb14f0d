"""``SqlEventLog``: execution events in ``chaingraph_events`` keyed by ``(execution_id, seq)``.

A batch is one INSERT in one transaction with one notification (on PostgreSQL with a
``PgNotifier``: a single statement carrying both). Subscriptions are the shared loop of
``backends.subscription`` over paged reads of this table; the PostgreSQL hot paths run on the
pooled connection's psycopg driver, the rest through SQLAlchemy Core.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, LiteralString

import psycopg
from sqlalchemy import exc, func, select, text

from chaingraph_executor.backends.common import as_utc
from chaingraph_executor.backends.sql.codec import decode_data, encode_data, pg_batch, pg_insert_batch
from chaingraph_executor.backends.sql.database import Database, Transaction
from chaingraph_executor.backends.sql.driver_sql import Statement, sqlite_time
from chaingraph_executor.backends.sql.notify import LocalNotifier, Notifier, PgNotifier, payload
from chaingraph_executor.backends.sql.tables import events
from chaingraph_executor.backends.subscription import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_POLL_INTERVAL_S,
    EVENTS_CHANNEL,
    LogRow,
    Subscription,
)
from chaingraph_executor.domain.events import ExecutionEvent
from chaingraph_executor.domain.execution import TERMINAL_STATUSES
from chaingraph_executor.errors import Conflict

_TERMINAL_STATUS_VALUES = tuple(sorted(s.value for s in TERMINAL_STATUSES))
_STATUS = Statement("SELECT status FROM chaingraph_executions WHERE id = :id")


# PostgreSQL: the whole batch travels as one JSON document in one parameter (see ``pg_batch``).
_PG_INSERT = text(pg_insert_batch(":execution_id", ":batch"))


async def insert_events(
    tx: Transaction,
    notifier: Notifier,
    execution_id: str,
    batch: Sequence[ExecutionEvent],
    *,
    notify: bool = True,
) -> None:
    """Insert a batch inside ``tx`` (one statement) and notify once (unless ``notify`` is false);
    the caller maps ``IntegrityError`` (a seq already stored) to ``Conflict``."""
    if not batch:
        return
    if tx.conn.dialect.name == "postgresql":
        await tx.conn.execute(
            _PG_INSERT,
            {"execution_id": execution_id, "batch": pg_batch(batch)},
        )
    else:
        # the driver's executemany with ready-made tuples: SQLAlchemy's per-row parameter
        # processing would cost more than SQLite's insert itself
        driver: Any = (await tx.conn.get_raw_connection()).driver_connection
        try:
            await driver.executemany(_SQLITE_INSERT, sqlite_rows(execution_id, batch))
        except sqlite3.IntegrityError as error:
            raise exc.IntegrityError(_SQLITE_INSERT, None, error) from error
    if notify:
        last = max(ev.index for ev in batch) + 1
        await notifier.notify(tx, EVENTS_CHANNEL, execution_id, str(last))


_SQLITE_INSERT = "INSERT INTO chaingraph_events (execution_id, seq, type, ts, data) VALUES (?, ?, ?, ?, ?)"


def sqlite_rows(execution_id: str, batch: Sequence[ExecutionEvent]) -> list[tuple[str, int, str, str, str]]:
    """Rows as SQLite stores them: ``ts`` as naive UTC text in SQLAlchemy's ``DateTime`` format
    (``YYYY-MM-DD HH:MM:SS.ffffff``), so both paths read and sort the same values."""
    return [
        (
            execution_id,
            ev.index + 1,
            ev.type,
            sqlite_time(ev.timestamp),
            encode_data(ev.data),
        )
        for ev in batch
    ]


#: Batches up to this size are appended as one statement (one trip to the driver's thread: the
#: latency of a small batch); larger ones as BEGIN, executemany, COMMIT (cheaper per row).
SQLITE_SINGLE_STATEMENT_MAX = 32

_SQLITE_APPEND = (
    "INSERT INTO chaingraph_events (execution_id, seq, type, ts, data)"
    " SELECT :e, json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
    " json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each(:rows)"
)


def _sqlite_read_query(data: str) -> str:
    return (
        "SELECT seq, type, ts, data FROM ("
        "SELECT seq, type, ts, " + data + " AS data FROM chaingraph_events"
        " WHERE execution_id = ? AND seq >= ? AND seq < ?"
        " UNION ALL SELECT * FROM (SELECT seq, type, ts, " + data + " AS data FROM chaingraph_events"
        " WHERE execution_id = ? AND seq >= ? ORDER BY seq LIMIT 1)"
        ") ORDER BY seq"
    )


def duplicate_seq(execution_id: str, batch: Sequence[ExecutionEvent]) -> Conflict:
    seqs = [ev.index + 1 for ev in batch]
    return Conflict(
        f"event seq already stored for execution {execution_id} (batch seq {min(seqs)}..{max(seqs)})",
        execution_id=execution_id,
    )


def _pg_read_query(data: str) -> LiteralString:
    return (
        "SELECT seq, type, ts, " + data + " FROM chaingraph_events"
        " WHERE execution_id = %(e)s AND seq >= %(lo)s AND seq < %(hi)s"
        " UNION ALL (SELECT seq, type, ts, " + data + " FROM chaingraph_events"
        " WHERE execution_id = %(e)s AND seq >= %(hi)s ORDER BY seq LIMIT 1)"
        " ORDER BY seq"
    )


_PG_READ = _pg_read_query("data")
_PG_READ_FILTERED = _pg_read_query("CASE WHEN type = ANY(%(types)s) THEN data END")
_PG_READ_NO_DATA = _pg_read_query("NULL::text")


# One statement, hence one implicit transaction and one round trip: the batch insert and its
# notification (delivered when the statement commits).
_PG_APPEND = (
    f"WITH inserted AS ({pg_insert_batch('%(e)s', '%(batch)s')} RETURNING 1)"
    " SELECT pg_notify(%(channel)s, %(payload)s)"
)


class SqlEventLog:
    """The event log on SQLite or PostgreSQL."""

    def __init__(
        self, db: Database, notifier: Notifier, *, poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    ) -> None:
        self._db = db
        self._notifier = notifier
        self._poll_interval_s = poll_interval_s
        self._pg_fast_path = db.dialect == "postgresql" and isinstance(notifier, PgNotifier)
        self._sqlite_fast_path = db.is_sqlite and isinstance(notifier, LocalNotifier)

    async def append(self, execution_id: str, events_: Sequence[ExecutionEvent]) -> None:
        if not events_:
            return
        if len({ev.index for ev in events_}) != len(events_):
            raise duplicate_seq(execution_id, events_)
        if self._pg_fast_path:
            await self._pg_append(execution_id, events_)
            return
        if self._sqlite_fast_path and len(events_) <= SQLITE_SINGLE_STATEMENT_MAX:
            await self._sqlite_append(execution_id, events_)
            return
        try:
            async with self._db.begin() as tx:
                await insert_events(tx, self._notifier, execution_id, events_)
        except exc.IntegrityError:
            raise duplicate_seq(execution_id, events_) from None

    async def _pg_append(self, execution_id: str, batch: Sequence[ExecutionEvent]) -> None:
        last = max(ev.index for ev in batch) + 1
        params = {
            "e": execution_id,
            "batch": pg_batch(batch),
            "channel": EVENTS_CHANNEL,
            "payload": payload(execution_id, str(last)),
        }
        async with self._db.driver_connection() as driver, driver.cursor() as cur:
            try:
                await cur.execute(_PG_APPEND, params, prepare=True)
            except psycopg.errors.UniqueViolation:
                raise duplicate_seq(execution_id, batch) from None

    async def _sqlite_append(self, execution_id: str, batch: Sequence[ExecutionEvent]) -> None:
        # One statement (so one implicit transaction and one trip to the driver's thread instead
        # of BEGIN, INSERT and COMMIT): the rows travel as one JSON array, as on PostgreSQL.
        rows = json.dumps([row[1:] for row in sqlite_rows(execution_id, batch)], ensure_ascii=False)
        try:
            await self._db.driver_fetch(_SQLITE_APPEND, {"e": execution_id, "rows": rows}, write=True)
        except sqlite3.IntegrityError:
            raise duplicate_seq(execution_id, batch) from None
        assert isinstance(self._notifier, LocalNotifier)
        self._notifier.hub.wake(EVENTS_CHANNEL, execution_id)

    async def read(
        self, execution_id: str, from_seq: int, *, limit: int, types: frozenset[str] | None = None
    ) -> list[ExecutionEvent]:
        out: list[ExecutionEvent] = []
        cursor = max(from_seq, 0)
        page = min(max(limit, 100), DEFAULT_PAGE_SIZE)
        while len(out) < limit:
            rows = await self.read_rows(execution_id, cursor, page, types)
            if not rows:
                break
            out.extend(row.event for row in rows if row.event is not None)
            cursor = rows[-1].seq + 1
        return out[: max(limit, 0)]

    async def last_seq(self, execution_id: str) -> int:
        async with self._db.connect() as conn:
            value = await conn.scalar(
                select(func.max(events.c.seq)).where(events.c.execution_id == execution_id)
            )
        return -1 if value is None else int(value)

    def subscribe(
        self,
        execution_id: str,
        from_seq: int,
        *,
        types: frozenset[str] | None = None,
        batch_size: int = 100,
        batch_timeout_ms: int = 25,
        poll_interval_s: float | None = None,
    ) -> AbstractAsyncContextManager[AsyncIterator[list[ExecutionEvent]]]:
        return Subscription(
            self,
            self._notifier,
            execution_id,
            from_seq,
            types=types,
            batch_size=batch_size,
            batch_timeout_ms=batch_timeout_ms,
            poll_interval_s=self._poll_interval_s if poll_interval_s is None else poll_interval_s,
        )

    # -- EventSource (for Subscription) ---------------------------------------------------

    async def read_rows(
        self, execution_id: str, from_seq: int, limit: int, types: frozenset[str] | None
    ) -> list[LogRow]:
        """Rows ``from_seq <= seq < from_seq + limit`` plus the first row after that range.

        The bounded range keeps PostgreSQL's plan cheap whatever its row estimate (an open-ended
        ``seq >= x ORDER BY seq LIMIT n`` may become a bitmap scan over the rest of the stream);
        the extra row shows whether more follows, even across a hole in the seqs.
        """
        from_seq = max(from_seq, 0)
        upper = from_seq + max(limit, 1)
        if self._db.dialect == "postgresql":
            rows = await self._pg_read_rows(execution_id, from_seq, upper, types)
        else:
            rows = await self._sqlite_read_rows(execution_id, from_seq, upper, types)
        return [
            LogRow(
                seq,
                type_,
                None if data is None else ExecutionEvent(seq - 1, type_, as_utc(ts), decode_data(data)),
            )
            for seq, type_, ts, data in rows
        ]

    async def _sqlite_read_rows(
        self, execution_id: str, from_seq: int, upper: int, types: frozenset[str] | None
    ) -> list[tuple[int, str, datetime, str | None]]:
        # The same query as on PostgreSQL, on the driver: SQLAlchemy's result layer would parse
        # every timestamp with a regular expression.
        params: tuple[Any, ...] = (execution_id, from_seq, upper, execution_id, upper)
        if types is None:
            data = "data"
        elif types:
            ordered = sorted(types)
            data = f"CASE WHEN type IN ({', '.join('?' * len(ordered))}) THEN data END"
            params = (*ordered, execution_id, from_seq, upper, *ordered, execution_id, upper)
        else:
            data = "NULL"
        driver = await self._db.sqlite_driver()
        rows = await driver.execute_fetchall(_sqlite_read_query(data), params)
        parse = datetime.fromisoformat
        return [(seq, type_, parse(ts), value) for seq, type_, ts, value in rows]

    async def _pg_read_rows(
        self, execution_id: str, from_seq: int, upper: int, types: frozenset[str] | None
    ) -> Sequence[tuple[int, str, datetime, str | None]]:
        # The hot read path: the same query as _sa_read_rows, run on the pooled connection's
        # psycopg driver with a binary cursor (about three times cheaper per row than the
        # SQLAlchemy result layer).
        params: dict[str, Any] = {"e": execution_id, "lo": from_seq, "hi": upper}
        if types is None:
            query = _PG_READ
        elif types:
            query = _PG_READ_FILTERED
            params["types"] = sorted(types)
        else:
            query = _PG_READ_NO_DATA
        async with self._db.driver_connection() as driver, driver.cursor(binary=True) as cur:
            await cur.execute(query, params, prepare=True)
            rows: list[tuple[int, str, datetime, str | None]] = await cur.fetchall()
            return rows

    async def is_finished(self, execution_id: str) -> bool:
        rows = await self._db.driver_fetch(_STATUS.text(self._db.is_sqlite), {"id": execution_id})
        return bool(rows) and rows[0][0] in _TERMINAL_STATUS_VALUES
