"""``InMemoryWorkerRegistry``: worker heartbeats in ``MemoryState``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from chaingraph_executor.backends.memory.state import MemoryState, json_copy
from chaingraph_executor.ports import WorkerInfo


class InMemoryWorkerRegistry:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def heartbeat(self, executor_id: str, info: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        current = self._state.workers.get(executor_id)
        started_at = now if current is None else current.started_at
        self._state.workers[executor_id] = WorkerInfo(executor_id, started_at, now, json_copy(info))

    async def list(self) -> list[WorkerInfo]:
        workers = [self._state.workers[k] for k in sorted(self._state.workers)]
        return [replace(w, info=json_copy(w.info)) for w in workers]

    async def claim_dead(self, executor_id: str, silent_since: datetime) -> bool:
        worker = self._state.workers.get(executor_id)
        if worker is None or worker.heartbeat_at >= silent_since:
            return False
        del self._state.workers[executor_id]
        return True

    async def remove(self, executor_id: str) -> None:
        self._state.workers.pop(executor_id, None)
