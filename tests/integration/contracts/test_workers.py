"""WorkerRegistry contract: heartbeats upsert, list, remove (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any


async def test_heartbeat_registers_then_refreshes(backend: Any) -> None:
    await backend.workers.heartbeat("w2", {"pid": 2})
    await backend.workers.heartbeat("w1", {"pid": 1, "queues": ["default"]})
    first = {w.executor_id: w for w in await backend.workers.list()}
    assert list(first) == ["w1", "w2"]
    assert first["w1"].info == {"pid": 1, "queues": ["default"]}
    assert first["w1"].started_at == first["w1"].heartbeat_at
    assert first["w1"].heartbeat_at.tzinfo is not None

    await asyncio.sleep(0.01)
    await backend.workers.heartbeat("w1", {"pid": 1, "busy": 3})
    again = {w.executor_id: w for w in await backend.workers.list()}
    assert again["w1"].started_at == first["w1"].started_at
    assert again["w1"].heartbeat_at > first["w1"].heartbeat_at
    assert again["w1"].info == {"pid": 1, "busy": 3}
    assert again["w2"] == first["w2"]


async def test_remove(backend: Any) -> None:
    await backend.workers.heartbeat("w1", {})
    await backend.workers.remove("w1")
    await backend.workers.remove("w1")  # idempotent
    assert await backend.workers.list() == []
