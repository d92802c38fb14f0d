"""The composition root: builds the services of one process for its role.

- ``embedded``: API + worker in one process, SQLite under ``data_dir`` (the default);
- ``api``: stores + a DBOS client (enqueue, signal, cancel, stream); never runs flows;
- ``worker``: stores + the DBOS runtime; runs flows.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaingraph_executor.backends.dbos.runtime import (
    DbosDispatcher,
    DbosWorker,
    Reaper,
    migrate_system_database,
)
from chaingraph_executor.backends.sql import SqlBackend
from chaingraph_executor.backends.subscription import CONTROL_CHANNEL, EVENTS_CHANNEL
from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.engine.nodes import NodeRegistry
from chaingraph_executor.services.auth import AuthService
from chaingraph_executor.services.executions import ExecutionService
from chaingraph_executor.services.flows import FlowService
from chaingraph_executor.services.orchestration import Ports
from chaingraph_executor.settings import Mode, Settings

log = logging.getLogger(__name__)


NODE_ENTRY_POINT_GROUP = "chaingraph.nodes"

#: The wake-up channels each role waits on (PostgreSQL delivers every NOTIFY to every process
#: listening on its channel): the API serves event subscriptions, a worker watches control states.
LISTENS: dict[str, tuple[str, ...]] = {
    "embedded": (EVENTS_CHANNEL, CONTROL_CHANNEL),
    "api": (EVENTS_CHANNEL,),
    "worker": (CONTROL_CHANNEL,),
}


def build_registry(settings: Settings) -> NodeRegistry:
    """The built-in nodes, then the modules of installed packages that declare an entry point in
    the ``chaingraph.nodes`` group, then the modules named in ``CHAINGRAPH_NODE_MODULES``."""
    registry = builtin_registry()
    for entry in importlib.metadata.entry_points(group=NODE_ENTRY_POINT_GROUP):
        registry.load_module(entry.module)
    for module in settings.node_modules:
        registry.load_module(module)
    return registry


@dataclass
class Services:
    settings: Settings
    role: Mode
    registry: NodeRegistry
    backend: SqlBackend
    dispatcher: DbosDispatcher
    executions: ExecutionService
    flows: FlowService
    auth: AuthService
    worker: DbosWorker | None = None
    reaper: Reaper | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _ensure_sqlite_dirs(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


@asynccontextmanager
async def build_services(settings: Settings, role: Mode | None = None) -> AsyncIterator[Services]:
    role = role or settings.mode
    registry = build_registry(settings)
    app_url = settings.app_database_url
    sys_url = settings.dbos_system_url
    if role != "embedded" and app_url.startswith("sqlite"):
        log.warning("the %s role is meant for PostgreSQL; running on SQLite", role)
    _ensure_sqlite_dirs(app_url)
    _ensure_sqlite_dirs(sys_url)
    async with AsyncExitStack() as stack:
        backend = await stack.enter_async_context(
            SqlBackend(
                app_url,
                migrate=True,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                driver_pool_size=settings.db_driver_pool_size,
                poll_interval_s=settings.event_poll_s,
                control_poll_interval_s=settings.control_poll_s,
                listen_channels=LISTENS[role],
            )
        )
        await asyncio.to_thread(migrate_system_database, sys_url)
        ports = Ports(
            flows=backend.flows,
            executions=backend.executions,
            events=backend.events,
            registry=registry,
            max_depth=settings.max_depth,
            event_batch_size=settings.event_batch_size,
            services={},
        )
        dispatcher = await stack.enter_async_context(DbosDispatcher(settings))
        worker: DbosWorker | None = None
        reaper: Reaper | None = None
        if role in ("embedded", "worker"):
            executor_id = settings.executor_id or ("embedded" if role == "embedded" else settings.worker_id)
            worker = await stack.enter_async_context(
                DbosWorker(settings, ports, dispatcher, backend.workers, executor_id=executor_id)
            )
        if role != "embedded":
            reaper = await stack.enter_async_context(Reaper(settings, dispatcher, backend.workers))
        yield Services(
            settings=settings,
            role=role,
            registry=registry,
            backend=backend,
            dispatcher=dispatcher,
            executions=ExecutionService(ports, dispatcher),
            flows=FlowService(backend.flows, registry),
            auth=AuthService(backend.users, dev_mode=settings.is_dev_auth),
            worker=worker,
            reaper=reaper,
        )
