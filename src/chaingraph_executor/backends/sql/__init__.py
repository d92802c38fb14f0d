"""The SQL backend (SQLite or PostgreSQL through SQLAlchemy): ``SqlBackend`` opens the database
and the notifier and builds every store on them."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from sqlalchemy import URL

from chaingraph_executor.backends.sql.database import Database, normalize_url
from chaingraph_executor.backends.sql.events import SqlEventLog
from chaingraph_executor.backends.sql.executions import SqlExecutionStore
from chaingraph_executor.backends.sql.flows import SqlFlowStore
from chaingraph_executor.backends.sql.migrate import migrate, schema_status
from chaingraph_executor.backends.sql.notify import CHANNELS, LocalNotifier, Notifier, PgNotifier
from chaingraph_executor.backends.sql.users import SqlUserStore
from chaingraph_executor.backends.sql.workers import SqlWorkerRegistry
from chaingraph_executor.backends.subscription import DEFAULT_POLL_INTERVAL_S

__all__ = [
    "Database",
    "LocalNotifier",
    "Notifier",
    "PgNotifier",
    "SqlBackend",
    "SqlEventLog",
    "SqlExecutionStore",
    "SqlFlowStore",
    "SqlUserStore",
    "SqlWorkerRegistry",
    "migrate",
    "schema_status",
]


class SqlBackend:
    """``async with SqlBackend(url) as backend:`` → ``backend.flows``, ``.executions``,
    ``.events``, ``.users``, ``.workers``, ``.notifier``, ``.db``.

    ``listen``: wake-ups through PostgreSQL LISTEN/NOTIFY (across processes); default on
    PostgreSQL. On SQLite (or with ``listen=False``) wake-ups stay in this process.
    ``listen_channels``: the channels this process waits on (default both: events and control).
    ``migrate``: upgrade the schema on entry.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        pool_size: int = 10,
        max_overflow: int = 20,
        driver_pool_size: int = 5,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        control_poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        listen: bool | None = None,
        listen_channels: Sequence[str] = CHANNELS,
        migrate: bool = False,
    ) -> None:
        self.url = normalize_url(url)
        self.db = Database(
            self.url, pool_size=pool_size, max_overflow=max_overflow, driver_pool_size=driver_pool_size
        )
        use_listener = not self.db.is_sqlite and listen is not False
        self.notifier: Notifier = (
            PgNotifier(self.url, channels=listen_channels) if use_listener else LocalNotifier()
        )
        self._migrate = migrate
        self.flows = SqlFlowStore(self.db)
        self.executions = SqlExecutionStore(
            self.db, self.notifier, control_poll_interval_s=control_poll_interval_s
        )
        self.events = SqlEventLog(self.db, self.notifier, poll_interval_s=poll_interval_s)
        self.users = SqlUserStore(self.db)
        self.workers = SqlWorkerRegistry(self.db)

    async def __aenter__(self) -> SqlBackend:
        if self._migrate:
            await migrate(self.url)
        await self.db.__aenter__()
        try:
            await self.notifier.__aenter__()
        except BaseException:
            await self.db.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.notifier.__aexit__(exc_type, exc, tb)
        finally:
            await self.db.close()
