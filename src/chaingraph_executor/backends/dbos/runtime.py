"""DBOS wiring: the pure config, the client-side dispatcher, the worker runtime, and recovery.

- :class:`DbosDispatcher` (every role): enqueue / cancel / resume through a ``DBOSClient``;
  never runs flows (START is not a DBOS message: it is the execution's control state).
- :class:`DbosWorker` (worker and embedded roles): launches the DBOS runtime with a pinned
  application version and a unique executor id, registers the queue, and runs the heartbeat.
- :class:`Reaper` (every role): resumes the workflows of workers that stopped heart-beating on
  a live worker (open-source DBOS does not do this by itself).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from dbos import DBOS, DBOSClient, DBOSConfig, EnqueueOptions

from chaingraph_executor.backends.dbos import workflows as wf
from chaingraph_executor.backends.sql.database import Database, normalize_url
from chaingraph_executor.ports import InTransaction, WorkerRegistry
from chaingraph_executor.services import orchestration as orch
from chaingraph_executor.settings import Settings

log = logging.getLogger(__name__)

APP_NAME = "chaingraph-executor"
FINISHED_WORKFLOW_STATUSES = frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})


def _sqlite_path(url: str) -> str:
    return url.split("///", 1)[1] if "///" in url else url.removeprefix("sqlite:")


def sqlite_connect(path: str) -> sqlite3.Connection:
    """DBOS's SQLite connections in WAL mode with ``synchronous=NORMAL``: one fsync-free commit
    instead of several synced journal writes. A killed process loses nothing; an OS crash may
    lose the last commits (the embedded mode's trade-off, see docs/adr/0006)."""
    conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def dbos_config(settings: Settings, executor_id: str) -> DBOSConfig:
    url = settings.dbos_system_url
    sqlite = url.startswith("sqlite")
    config: DBOSConfig = {
        "name": APP_NAME,
        "system_database_url": url,
        "application_version": settings.application_version,
        "executor_id": executor_id,
        # DBOS's own message waits (recv, events, streams) poll at this interval; nothing here
        # uses them (START is a control state, docs/adr/0009), so DBOS's default rather than the
        # 100 polls of its SQLite file a second that a 10 ms interval cost.
        "notification_listener_polling_interval_sec": 1.0,
        "log_level": "WARNING",
    }
    if sqlite:
        config["db_engine_kwargs"] = {"creator": functools.partial(sqlite_connect, _sqlite_path(url))}
    else:
        config["sys_db_pool_size"] = 5
    return config


def migrate_system_database(url: str) -> None:
    DBOS.migrate(url)


class DbosDispatcher:
    """The service side of the durable workflows, over a ``DBOSClient``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: DBOSClient | None = None
        self._db: Database | None = None
        self._shared_database = normalize_url(settings.app_database_url) == normalize_url(
            settings.dbos_system_url
        )

    async def __aenter__(self) -> DbosDispatcher:
        url = self._settings.dbos_system_url
        self._client = await asyncio.to_thread(
            DBOSClient,
            system_database_url=url,
            use_listen_notify=not url.startswith("sqlite"),
            application_name=APP_NAME,
        )
        if not url.startswith("sqlite"):
            # Enqueues go through DBOS's in-transaction API on this process's async connections:
            # one transaction on the event loop, no hop to a worker thread.
            # A few connections that stay open: enqueues are one short transaction each, and
            # a connection opened and closed per call would cost a PostgreSQL session each time.
            self._db = Database(url, pool_size=min(3, self._settings.db_pool_size), max_overflow=0)
            self._db.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None
        if self._client is not None:
            self._client.destroy()
            self._client = None

    @property
    def client(self) -> DBOSClient:
        assert self._client is not None, "dispatcher not entered"
        return self._client

    def _options(self, execution_id: str) -> EnqueueOptions:
        return {
            "workflow_name": wf.WORKFLOW_NAME,
            "queue_name": wf.QUEUE_NAME,
            "workflow_id": execution_id,
            "app_version": self._settings.application_version,
        }

    def enqueue_step(self, execution_id: str, depth: int = 0) -> InTransaction | None:
        """On PostgreSQL, when the application tables and DBOS's share one database (the
        default), the enqueue runs inside the execution store's transaction (its SQLAlchemy
        connection): the row and its workflow exist together or not at all."""
        if self._db is None or not self._shared_database:
            return None
        return self._enqueue_in(execution_id, depth)

    def _enqueue_in(self, execution_id: str, depth: int) -> InTransaction:
        client, options = self.client, self._options(execution_id)

        async def step(conn: Any) -> None:
            await conn.run_sync(lambda c: client.enqueue_in_transaction(c, options, execution_id, depth))

        return step

    async def enqueue(self, execution_id: str, depth: int = 0) -> None:
        if self._db is None:
            await self.client.enqueue_async(self._options(execution_id), execution_id, depth)
            return
        async with self._db.begin() as tx:
            await self._enqueue_in(execution_id, depth)(tx.conn)

    async def cancel(self, execution_id: str, *, settle_s: float = 0.0) -> None:
        """Cancel the workflow. With ``settle_s``, first give a workflow whose execution already
        ended that long to return by itself (cancelling it while it records its outcome only
        produces noise); a finished workflow is left as it is."""
        deadline = time.monotonic() + settle_s
        while settle_s > 0:
            statuses = await self.client.list_workflows_async(
                workflow_ids=[execution_id], load_input=False, load_output=False
            )
            if not statuses or statuses[0].status in FINISHED_WORKFLOW_STATUSES:
                return
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)
        await self.client.cancel_workflow_async(execution_id)

    async def resume(self, execution_id: str) -> None:
        await self.client.resume_workflow_async(execution_id, queue_name=wf.QUEUE_NAME)

    async def pending_of(self, executor_id: str) -> list[str]:
        statuses = await self.client.list_workflows_async(
            status=["PENDING"], executor_id=executor_id, load_input=False, load_output=False
        )
        return [s.workflow_id for s in statuses]

    async def queue_depth(self) -> int:
        statuses = await self.client.list_workflows_async(
            status=["ENQUEUED"], queue_name=wf.QUEUE_NAME, load_input=False, load_output=False
        )
        return len(statuses)


class DbosWorker:
    """The DBOS runtime of a worker (or of the embedded mode)."""

    def __init__(
        self,
        settings: Settings,
        ports: orch.Ports,
        dispatcher: DbosDispatcher,
        workers: WorkerRegistry,
        *,
        executor_id: str,
    ) -> None:
        self.settings = settings
        self.ports = ports
        self.dispatcher = dispatcher
        self.workers = workers
        self.executor_id = executor_id
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> DbosWorker:
        wf.install(
            wf.WorkerContext(
                ports=self.ports,
                start_timeout_s=self.settings.start_timeout_s,
                flow_slots=asyncio.Semaphore(self.settings.worker_concurrency),
                spawn=self.dispatcher.enqueue,
            )
        )
        DBOS(config=dbos_config(self.settings, self.executor_id))
        DBOS.launch()
        await DBOS.register_queue_async(
            wf.QUEUE_NAME,
            worker_concurrency=max(1000, self.settings.worker_concurrency),
            polling_interval_sec=self.settings.queue_poll_s,
        )
        await self.workers.heartbeat(self.executor_id, self._info())
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="worker-heartbeat"))
        try:
            await self.enqueue_orphans()
        except Exception:
            log.warning("looking for executions without a workflow failed", exc_info=True)
        return self

    async def enqueue_orphans(self, *, older_than_s: float = 5.0, limit: int = 1000) -> list[str]:
        """Give executions left in ``created`` without a durable workflow their workflow now.

        Where the row and the enqueue are separate transactions (SQLite, or DBOS in a database of
        its own), a process that stopped between the two left a row that nothing would ever run
        or time out. Enqueueing is idempotent (workflow id = execution id)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        waiting = await self.ports.executions.created_before(cutoff, limit=limit)
        if not waiting:
            return []
        statuses = await self.dispatcher.client.list_workflows_async(
            workflow_ids=[e.id for e in waiting], load_input=False, load_output=False
        )
        known = {s.workflow_id for s in statuses}
        missing = [e for e in waiting if e.id not in known]
        for execution in missing:
            log.warning(
                "execution %s had no workflow; enqueueing it",
                execution.id,
                extra={"action": "orphan_enqueued", "execution_id": execution.id},
            )
            await self.dispatcher.enqueue(execution.id, execution.execution_depth)
        return [e.id for e in missing]

    def _info(self) -> dict[str, Any]:
        return {"mode": self.settings.mode, "concurrency": self.settings.worker_concurrency}

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            try:
                await self.workers.heartbeat(self.executor_id, self._info())
            except Exception:
                log.warning("heartbeat failed", exc_info=True)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.workers.remove(self.executor_id)
        DBOS.destroy(workflow_completion_timeout_sec=int(self.settings.shutdown_grace_s))
        # DBOS made its own (now shut down) pool the loop's default executor: give the loop a
        # working one back, so the process can go on (or launch again).
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor())
        wf.install(None)


class Reaper:
    """Resumes, on live workers, the workflows of workers whose heartbeat stopped."""

    def __init__(self, settings: Settings, dispatcher: DbosDispatcher, workers: WorkerRegistry) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.workers = workers
        self._task: asyncio.Task[None] | None = None
        self.resumed: list[str] = []

    async def __aenter__(self) -> Reaper:
        self._task = asyncio.create_task(self._loop(), name="reaper")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            try:
                await self.reap_once()
            except Exception:
                log.warning("reaper pass failed", exc_info=True)

    async def reap_once(self) -> list[str]:
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.worker_dead_after_s)
        resumed: list[str] = []
        for worker in await self.workers.list():
            if worker.heartbeat_at >= cutoff or not await self.workers.claim_dead(worker.executor_id, cutoff):
                continue
            log.warning(
                "worker %s is dead (last heartbeat %s); resuming its workflows",
                worker.executor_id,
                worker.heartbeat_at.isoformat(),
                extra={"action": "worker_dead", "executor_id": worker.executor_id},
            )
            for workflow_id in await self.dispatcher.pending_of(worker.executor_id):
                await self.dispatcher.resume(workflow_id)
                resumed.append(workflow_id)
        self.resumed += resumed
        return resumed
