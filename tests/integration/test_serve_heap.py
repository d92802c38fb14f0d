"""A started service freezes its startup heap: full garbage collections then scan only what it
allocated since (a full collection over the startup heap stopped the API for 60 to 80 ms)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from chaingraph_executor.serve import GC_THRESHOLDS, serve
from chaingraph_executor.settings import Settings


@pytest.mark.asyncio
async def test_serve_freezes_the_startup_heap_once_it_listens(tmp_path: Path) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    announced: list[str] = []
    listening = asyncio.Event()

    def announce(line: str) -> None:
        announced.append(line)
        listening.set()

    settings = Settings(data_dir=tmp_path, port=0, shutdown_grace_s=0)
    task = asyncio.create_task(serve(settings, "embedded", announce=announce))
    try:
        async with asyncio.timeout(60):
            await listening.wait()
        frozen = gc.get_freeze_count()
        # everything the service set up is frozen (modules, DBOS, SQLAlchemy, the registry…)
        assert frozen > 10_000, frozen
        assert "listening on http://" in announced[0]
        gc.collect()
        # a collection leaves the frozen heap alone (a frozen object only leaves it when reference
        # counting frees it, as a few startup objects do while the service runs)
        assert gc.get_freeze_count() > frozen * 0.9
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gc.unfreeze()
        gc.set_threshold(*thresholds)
