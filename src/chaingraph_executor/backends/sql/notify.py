"""Wake-ups for the SQL backend.

A write calls ``await notifier.notify(tx, channel, key)`` inside its transaction; readers hold a
``notifier.waiter(channel, key)``. Delivery happens at commit, never before:

* :class:`LocalNotifier` (embedded SQLite, or a single process): wakes in-process waiters from an
  after-commit callback.
* :class:`PgNotifier`: ``pg_notify`` in the writing transaction (PostgreSQL delivers it at commit)
  and one dedicated psycopg connection in autocommit that LISTENs on both channels and wakes the
  waiters of this process. It reconnects with backoff, probes the connection while idle, and
  wakes every waiter after a reconnect (notifications sent meanwhile are lost; readers re-read).

Payloads: the execution id; on the events channel ``<execution id>:<last seq>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Protocol

import psycopg
from psycopg import sql
from sqlalchemy import URL, func, select

from chaingraph_executor.backends.sql.database import Transaction, libpq_url
from chaingraph_executor.backends.subscription import (
    CONTROL_CHANNEL,
    EVENTS_CHANNEL,
    Waiter,
    WakeupHub,
)
from chaingraph_executor.errors import BackendUnavailable

log = logging.getLogger(__name__)

CHANNELS = (EVENTS_CHANNEL, CONTROL_CHANNEL)


def payload(key: str, extra: str | None = None) -> str:
    return key if extra is None else f"{key}:{extra}"


def parse_payload(channel: str, raw: str) -> str:
    """The key (execution id) of a notification payload."""
    if channel == EVENTS_CHANNEL:
        key, sep, _seq = raw.rpartition(":")
        return key if sep else raw
    return raw


class Notifier(Protocol):
    def waiter(self, channel: str, key: str) -> AbstractContextManager[Waiter]:
        """Register a waiter for ``(channel, key)`` while the ``with`` block runs."""
        ...

    async def notify(self, tx: Transaction, channel: str, key: str, extra: str | None = None) -> None:
        """Wake the waiters of ``(channel, key)`` once ``tx`` commits (nothing if it rolls back)."""
        ...

    async def __aenter__(self) -> Notifier: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class LocalNotifier:
    """In-process wake-ups, delivered by an after-commit callback."""

    def __init__(self, hub: WakeupHub | None = None) -> None:
        self.hub = hub or WakeupHub()

    async def __aenter__(self) -> LocalNotifier:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def waiter(self, channel: str, key: str) -> AbstractContextManager[Waiter]:
        return self.hub.waiter(channel, key)

    async def notify(self, tx: Transaction, channel: str, key: str, extra: str | None = None) -> None:
        hub = self.hub
        tx.after_commit(lambda: hub.wake(channel, key))


class PgNotifier:
    """LISTEN/NOTIFY wake-ups across processes; ready (LISTEN issued) when ``__aenter__`` returns.

    ``channels``: what this process waits for. Every NOTIFY goes to every process listening on its
    channel, so a process listens only on what it has waiters for (an API process on events, a
    worker on control); a waiter on any other channel is refused."""

    def __init__(
        self,
        url: str | URL,
        *,
        channels: Sequence[str] = CHANNELS,
        hub: WakeupHub | None = None,
        probe_interval_s: float = 10.0,
        probe_timeout_s: float = 5.0,
        connect_timeout_s: float = 10.0,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 5.0,
    ) -> None:
        unknown = set(channels) - set(CHANNELS)
        if unknown or not channels:
            raise ValueError(f"channels must be some of {', '.join(CHANNELS)} (got {sorted(channels)})")
        self.channels = tuple(dict.fromkeys(channels))
        self.hub = hub or WakeupHub()
        self._conninfo = libpq_url(url)
        self._probe_interval_s = probe_interval_s
        self._probe_timeout_s = probe_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._backend_pid: int | None = None
        self._sessions = 0
        self.last_error: str | None = None

    # -- state ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the listener connection is up and listening."""
        return self._connected.is_set()

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the listener connection (``None`` while disconnected)."""
        return self._backend_pid

    @property
    def reconnects(self) -> int:
        return max(self._sessions - 1, 0)

    async def wait_connected(self, seconds: float | None = None) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> PgNotifier:
        self._task = asyncio.create_task(self._run(), name="chaingraph-pg-listener")
        ready = asyncio.ensure_future(self._connected.wait())
        try:
            await asyncio.wait(
                {ready, self._task}, timeout=self._connect_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ready.cancel()
        if not self._connected.is_set():
            await self._stop()
            detail = f": {self.last_error}" if self.last_error else ""
            raise BackendUnavailable(f"cannot LISTEN on PostgreSQL{detail}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- sending -------------------------------------------------------------------------

    def waiter(self, channel: str, key: str) -> AbstractContextManager[Waiter]:
        if channel not in self.channels:
            raise RuntimeError(
                f"this process does not listen on {channel} (it listens on {', '.join(self.channels)})"
            )
        return self.hub.waiter(channel, key)

    async def notify(self, tx: Transaction, channel: str, key: str, extra: str | None = None) -> None:
        await tx.conn.execute(select(func.pg_notify(channel, payload(key, extra))))

    # -- listening -----------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._backoff_initial_s
        while True:
            sessions = self._sessions
            try:
                await self._session()
            except (psycopg.Error, OSError, TimeoutError) as error:
                self.last_error = f"{type(error).__name__}: {error}".strip()
            except Exception as error:
                self.last_error = f"{type(error).__name__}: {error}".strip()
                log.exception("PostgreSQL listener failed")
            self._connected.clear()
            self._backend_pid = None
            if self._sessions > sessions:  # it had been up: start the backoff afresh
                delay = self._backoff_initial_s
            log.warning("PostgreSQL listener down (%s); reconnecting in %.2f s", self.last_error, delay)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self._backoff_max_s)

    async def _session(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=max(1, int(self._connect_timeout_s)),
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
        async with conn:
            for channel in self.channels:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self._sessions += 1
            self._backend_pid = conn.info.backend_pid
            self.last_error = None
            self._connected.set()
            if self._sessions > 1:
                log.info("PostgreSQL listener reconnected")
                self.hub.wake_all()  # anything notified while we were away is found by a re-read
            while True:
                async for note in conn.notifies(timeout=self._probe_interval_s):
                    self.hub.wake(note.channel, parse_payload(note.channel, note.payload))
                async with asyncio.timeout(self._probe_timeout_s):  # liveness probe
                    await conn.execute("SELECT 1")
