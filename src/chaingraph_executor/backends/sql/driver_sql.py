"""The execution store's hot one-row statements, run on the database driver (psycopg or sqlite3)
rather than through SQLAlchemy Core: read an execution, read its control state, and the
non-terminal status compare-and-set (``created → running``, ``running ⇄ paused``).

SQLAlchemy compiles (or looks up), binds and type-processes every statement on every call; for
these primary-key statements that costs several times the database's own work, and they sit on
the start path and run for every API call. The values read and written are exactly those of the
SQLAlchemy column types in ``columns.py`` (a test reads the rows back both ways).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chaingraph_executor.backends.common import as_utc
from chaingraph_executor.backends.sql.codec import pg_insert_batch
from chaingraph_executor.backends.sql.tables import executions
from chaingraph_executor.domain.events import from_json_safe, to_json_safe
from chaingraph_executor.domain.execution import ExecutionStatus
from chaingraph_executor.ports import StatusChange

EXECUTION_COLUMNS: tuple[str, ...] = tuple(c.name for c in executions.c)
CONTROL_COLUMNS = (
    "control_state",
    "control_reason",
    "control_breakpoints",
    "control_step_seq",
    "control_version",
)
_JSON_COLUMNS = frozenset({"options", "integration", "external_events", "outputs", "control_breakpoints"})
_TIME_COLUMNS = frozenset({"created_at", "updated_at", "started_at", "completed_at"})
_PARAM = re.compile(r"(?<![:\w]):(\w+)")


class Statement:
    """One statement written with ``:name`` parameters, in the form of either driver."""

    __slots__ = ("postgresql", "sqlite")

    def __init__(self, sql: str) -> None:
        self.sqlite = sql
        self.postgresql = _PARAM.sub(r"%(\1)s", sql)

    def text(self, sqlite: bool) -> str:
        return self.sqlite if sqlite else self.postgresql


_ALL = ", ".join(EXECUTION_COLUMNS)
GET = Statement(f"SELECT {_ALL} FROM chaingraph_executions WHERE id = :id")
GET_CONTROL = Statement(f"SELECT {', '.join(CONTROL_COLUMNS)} FROM chaingraph_executions WHERE id = :id")
# START: the control of a root in `created` waiting for it becomes `run` (a compare-and-set on
# `wait`); `:owner` NULL means any owner
START = Statement(
    "UPDATE chaingraph_executions SET control_state = 'run', control_version = control_version + 1"
    " WHERE id = :id AND control_state = 'wait' AND status = 'created' AND parent_execution_id IS NULL"
    " AND (CAST(:owner AS TEXT) IS NULL OR owner_id = :owner) RETURNING id"
)
# PostgreSQL: the same with its notification, as one statement (nothing is notified when the
# compare-and-set finds nothing)
PG_START = f"WITH upd AS ({START.postgresql}) SELECT upd.id, pg_notify(%(channel)s, %(payload)s) FROM upd"


# PostgreSQL: a new execution row and its `execution:created` event, as one statement
_JSONB_COLUMNS = frozenset({"options", "integration", "external_events", "outputs", "control_breakpoints"})
PG_CREATE = (
    f"WITH ex AS (INSERT INTO chaingraph_executions ({_ALL}) VALUES ("
    + ", ".join(f"CAST(%({c})s AS jsonb)" if c in _JSONB_COLUMNS else f"%({c})s" for c in EXECUTION_COLUMNS)
    + ") RETURNING id) "
    + pg_insert_batch("ex.id", "%(batch)s", also_from="ex, ")
)


def pg_create_params(values: Mapping[str, Any], batch: str) -> dict[str, Any]:
    """``PG_CREATE``'s parameters from every column's value (as for SQLAlchemy's ``insert``) and the
    event batch (``codec.pg_batch``): the values the column types would bind."""
    params: dict[str, Any] = {"batch": batch}
    for name in EXECUTION_COLUMNS:
        value = values[name]
        if value is not None and name in _JSONB_COLUMNS:
            value = json.dumps(to_json_safe(value))
        elif value is not None and name in _TIME_COLUMNS:
            value = as_utc(value)
        params[name] = value
    return params


FLOW_COLUMNS = ("data", "owner_id", "version", "created_at", "updated_at")
GET_FLOW = Statement(f"SELECT {', '.join(FLOW_COLUMNS)} FROM chaingraph_flows WHERE id = :id")


def sqlite_time(value: datetime) -> str:
    """A timestamp as SQLAlchemy's ``DateTime`` stores it on SQLite: naive UTC text."""
    return as_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def decode(names: tuple[str, ...], row: tuple[Any, ...], sqlite: bool) -> dict[str, Any]:
    """A row as the SQLAlchemy column types would return it: aware UTC datetimes, JSON documents
    through the domain's JSON-safe form."""
    values = dict(zip(names, row, strict=True))
    for name in _TIME_COLUMNS.intersection(values):
        stamp = values[name]
        if stamp is not None:
            values[name] = as_utc(datetime.fromisoformat(stamp) if isinstance(stamp, str) else stamp)
    for name in _JSON_COLUMNS.intersection(values):
        doc = values[name]
        if doc is not None:
            values[name] = from_json_safe(json.loads(doc) if sqlite else doc)
    return values


def status_update(
    execution_id: str,
    change: StatusChange,
    sources: frozenset[ExecutionStatus],
    now: datetime,
    *,
    sqlite: bool,
) -> tuple[str, Mapping[str, Any]] | None:
    """The compare-and-set ``UPDATE … RETURNING`` of a non-terminal change that sets nothing but
    the status (the common case); ``None`` for anything else (the caller uses SQLAlchemy)."""
    extra = (change.error_message, change.error_node_id, change.outputs)
    if not sources or change.status.terminal or any(value is not None for value in extra):
        return None
    stamp: Any = sqlite_time(now) if sqlite else now
    params: dict[str, Any] = {"id": execution_id, "status": change.status.value, "now": stamp}
    for i, source in enumerate(sorted(s.value for s in sources)):
        params[f"s{i}"] = source
    running = change.status is ExecutionStatus.RUNNING
    return _status_update_sql(len(sources), running).text(sqlite), params


@functools.cache
def _status_update_sql(sources: int, running: bool) -> Statement:
    # a handful of shapes (number of allowed sources, whether it starts the run), built once each
    started = ", started_at = COALESCE(started_at, :now)" if running else ""
    names = ", ".join(f":s{i}" for i in range(sources))
    return Statement(
        f"UPDATE chaingraph_executions SET status = :status, updated_at = :now{started}"
        f" WHERE id = :id AND status IN ({names}) RETURNING {_ALL}"
    )


# PostgreSQL: the terminal status (compare-and-set), its events and their notification as one
# statement, so one round trip and one implicit transaction. Nothing is written or notified when
# the compare-and-set finds no row in an allowed status.
PG_FINISH = (
    "WITH upd AS ("
    " UPDATE chaingraph_executions SET status = %(status)s, updated_at = %(now)s, completed_at = %(now)s,"
    " error_message = COALESCE(%(error_message)s, error_message),"
    " error_node_id = COALESCE(%(error_node_id)s, error_node_id),"
    " outputs = COALESCE(CAST(%(outputs)s AS jsonb), outputs)"
    " WHERE id = %(id)s AND status = ANY(%(sources)s)"
    f" RETURNING {_ALL}"
    f"), ins AS ({pg_insert_batch('%(id)s', '%(batch)s')} WHERE EXISTS (SELECT 1 FROM upd) RETURNING 1)"
    " SELECT upd.*, pg_notify(%(channel)s, %(payload)s), (SELECT count(*) FROM ins) FROM upd"
)


def pg_finish_params(
    execution_id: str,
    change: StatusChange,
    sources: frozenset[ExecutionStatus],
    now: datetime,
    batch: str,
    channel: str,
    payload: str,
) -> dict[str, Any]:
    outputs = None if change.outputs is None else json.dumps(to_json_safe(change.outputs))
    return {
        "id": execution_id,
        "status": change.status.value,
        "now": now,
        "error_message": change.error_message,
        "error_node_id": change.error_node_id,
        "outputs": outputs,
        "sources": sorted(s.value for s in sources),
        "batch": batch,
        "channel": channel,
        "payload": payload,
    }
