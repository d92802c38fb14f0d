"""Stream port values: an append-only channel with any number of independent readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any


class StreamChannel:
    """Values written by one producer node, read in full by every consumer from the start."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._closed = False
        self._changed = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def send(self, item: Any) -> None:
        if self._closed:
            raise RuntimeError("stream is closed")
        self._items.append(item)
        self._changed.set()

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    async def _read(self) -> AsyncIterator[Any]:
        pos = 0
        while True:
            while pos < len(self._items):
                yield self._items[pos]
                pos += 1
            if self._closed:
                return
            self._changed.clear()
            if pos < len(self._items) or self._closed:
                continue
            await self._changed.wait()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._read()

    async def collect(self) -> list[Any]:
        return [item async for item in self]

    def to_json(self) -> dict[str, Any]:
        return {"stream": True, "items": len(self._items), "closed": self._closed}
