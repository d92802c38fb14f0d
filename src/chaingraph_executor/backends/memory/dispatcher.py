"""An in-process dispatcher: the durable workflow's sequence of steps run as plain asyncio tasks
(no durability). Same orchestration code as the DBOS workflow; used by fast service tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from chaingraph_executor.domain.execution import ExecutionStatus
from chaingraph_executor.ports import InTransaction
from chaingraph_executor.services import orchestration as orch

log = logging.getLogger(__name__)


class InProcessDispatcher:
    def __init__(self, ports: orch.Ports, *, start_timeout_s: float = 300.0, concurrency: int = 10) -> None:
        self.ports = ports
        self.start_timeout_s = start_timeout_s
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[str, asyncio.Task[str]] = {}
        self._cache = orch.FlowCache()

    async def __aenter__(self) -> InProcessDispatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def enqueue(self, execution_id: str, depth: int = 0) -> None:
        if execution_id not in self._tasks:
            self._tasks[execution_id] = asyncio.create_task(self._workflow(execution_id), name=execution_id)

    def enqueue_step(self, execution_id: str, depth: int = 0) -> InTransaction | None:
        return None  # in process: nothing to enqueue atomically with the row

    async def cancel(self, execution_id: str, *, settle_s: float = 0.0) -> None:
        task = self._tasks.get(execution_id)
        if task is not None and not task.done():
            task.cancel()

    async def result(self, execution_id: str) -> str:
        return await self._tasks[execution_id]

    async def _workflow(self, execution_id: str) -> str:
        ports = self.ports
        ex = await ports.executions.get(execution_id)
        if ex is None or ex.status is not ExecutionStatus.CREATED:
            return "skipped"
        if ex.execution_depth > ports.max_depth:
            await orch.fail_before_run(
                ports, ex, orch.depth_exceeded_message(ex.execution_depth, ports.max_depth)
            )
            return "failed"
        outcome = await orch.execute(
            ports,
            execution_id,
            wait_for_start=ex.is_root,
            start_timeout_s=self.start_timeout_s,
            slots=self._slots,
            cache=self._cache,
            spawn=self.enqueue,
        )
        if "skipped" in outcome:
            return "not-started"
        if "finished" in outcome:
            return str(outcome["finished"])
        index = int(outcome["next_index"])
        for child in outcome["children"]:
            with contextlib.suppress(Exception):
                await self._tasks[child["id"]]
            doc = await orch.child_settled_event(ports, execution_id, child["id"], child["eventName"], index)
            await orch.append_idempotent(ports, execution_id, [orch.event_from_json(doc)])
            index += 1
        return await orch.finish(ports, execution_id, outcome, index)
