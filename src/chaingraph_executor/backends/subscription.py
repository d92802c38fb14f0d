"""Live reading shared by every backend: in-process wake-ups, the event subscription loop
(catch-up, wait, batch, end after the terminal event) and the control-channel watch loop.

A backend supplies an :class:`EventSource` (paged reads plus "is the execution finished?") and
something that hands out :class:`Waiter` objects keyed by ``(channel, key)``; a notification is
only a hint to read now, so a missed one delays delivery by at most the poll interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from types import TracebackType
from typing import NamedTuple, Protocol

from chaingraph_executor.domain.events import TERMINAL_EVENT_VALUES, ExecutionEvent
from chaingraph_executor.errors import InvalidInput
from chaingraph_executor.ports import Control

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "chaingraph_events"
CONTROL_CHANNEL = "chaingraph_control"

DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_PAGE_SIZE = 1000
DEFAULT_GAP_GRACE_S = 5.0


class Waiter:
    """A wake-up flag for one reader: set by a notification, cleared before each read."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, seconds: float | None) -> bool:
        """Wait until woken or ``seconds`` passed (``None``: no limit); True when woken."""
        if self._event.is_set():
            return True
        if seconds is not None and seconds <= 0:
            return False
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


class WaiterSource(Protocol):
    def waiter(self, channel: str, key: str) -> AbstractContextManager[Waiter]:
        """Register a waiter for ``(channel, key)`` for the duration of the ``with`` block."""
        ...


class WakeupHub:
    """In-process registry of waiters; ``wake`` sets every waiter of one ``(channel, key)``."""

    def __init__(self) -> None:
        self._waiters: dict[tuple[str, str], set[Waiter]] = {}

    @contextmanager
    def waiter(self, channel: str, key: str) -> Iterator[Waiter]:
        waiter = Waiter()
        slot = (channel, key)
        self._waiters.setdefault(slot, set()).add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters.get(slot)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[slot]

    def wake(self, channel: str, key: str) -> None:
        for waiter in self._waiters.get((channel, key), ()):
            waiter.wake()

    def wake_all(self) -> None:
        """Wake everyone (after a listener reconnect, when notifications may have been lost)."""
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.wake()

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())


class LogRow(NamedTuple):
    """One stored event as the subscription loop sees it: ``event`` is ``None`` when the type
    filter excludes it (the loop still needs its seq and type to keep its cursor dense and to
    notice the terminal event)."""

    seq: int
    type: str
    event: ExecutionEvent | None


class EventSource(Protocol):
    async def read_rows(
        self, execution_id: str, from_seq: int, limit: int, types: frozenset[str] | None
    ) -> Sequence[LogRow]:
        """Rows with ``seq >= from_seq`` in seq order, at most ``limit`` of them."""
        ...

    async def is_finished(self, execution_id: str) -> bool:
        """True when the execution row has a terminal status."""
        ...


def check_subscribe_args(batch_size: int, batch_timeout_ms: int) -> None:
    if batch_size < 1:
        raise InvalidInput("batchSize must be at least 1", path="batchSize")
    if batch_timeout_ms < 0:
        raise InvalidInput("batchTimeoutMs must not be negative", path="batchTimeoutMs")


class Subscription:
    """``async with Subscription(...) as batches: async for batch in batches: ...``

    Live on entry (the waiter is registered before the first read). Yields lists of at most
    ``batch_size`` events from ``from_seq`` on, in seq order, without gaps or duplicates, and
    ends after the terminal event (even when ``types`` excludes it) or, as a safety net, when
    the execution row is terminal and everything stored has been read. Each subscription has its
    own cursor and holds at most one page plus one batch in memory.
    """

    def __init__(
        self,
        source: EventSource,
        waiters: WaiterSource,
        execution_id: str,
        from_seq: int,
        *,
        types: frozenset[str] | None = None,
        batch_size: int = 100,
        batch_timeout_ms: int = 25,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        page_size: int = DEFAULT_PAGE_SIZE,
        gap_grace_s: float = DEFAULT_GAP_GRACE_S,
    ) -> None:
        check_subscribe_args(batch_size, batch_timeout_ms)
        self._source = source
        self._waiters = waiters
        self._execution_id = execution_id
        self._from_seq = max(from_seq, 0)
        self._types = types
        self._batch_size = batch_size
        self._batch_timeout_s = batch_timeout_ms / 1000
        self._poll_interval_s = poll_interval_s
        self._page_size = max(page_size, 1)
        self._gap_grace_s = gap_grace_s
        self._stack = ExitStack()
        self._waiter: Waiter | None = None
        self._gen: AsyncGenerator[list[ExecutionEvent]] | None = None

    async def __aenter__(self) -> AsyncIterator[list[ExecutionEvent]]:
        self._waiter = self._stack.enter_context(self._waiters.waiter(EVENTS_CHANNEL, self._execution_id))
        self._gen = self._run(self._waiter)
        return self._gen

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._gen is not None:
                await self._gen.aclose()
        finally:
            self._stack.close()

    async def _read(self, cursor: int) -> tuple[deque[LogRow], bool]:
        """A page from ``cursor``, and whether it was full (more may be readable at once)."""
        fetched = await self._source.read_rows(self._execution_id, cursor, self._page_size, self._types)
        return deque(fetched), len(fetched) >= self._page_size

    def _skip_hole(self, cursor: int, to: int, why: str) -> int:
        log.warning(
            "event stream of %s has no seq %d..%d; skipping them (%s)",
            self._execution_id,
            cursor,
            to - 1,
            why,
        )
        return to

    async def _run(self, waiter: Waiter) -> AsyncGenerator[list[ExecutionEvent]]:
        loop = asyncio.get_running_loop()
        cursor = self._from_seq
        rows: deque[LogRow] = deque()  # the current page, from the cursor on
        batch: list[ExecutionEvent] = []
        batch_deadline = 0.0
        read_now = True  # more rows may be readable without waiting
        finished = False  # the row was seen terminal: what is stored now is all there will be
        hole_since: float | None = None
        status_checked = False  # is_finished() asked since the last read
        while True:
            # 1. Move rows at the cursor into the batch; end after the terminal event.
            while rows and len(batch) < self._batch_size and rows[0].seq <= cursor:
                row = rows.popleft()
                if row.seq < cursor:
                    continue
                cursor += 1
                hole_since = None
                if row.event is not None:
                    if not batch:
                        batch_deadline = loop.time() + self._batch_timeout_s
                    batch.append(row.event)
                if row.type in TERMINAL_EVENT_VALUES:
                    if batch:
                        yield batch
                    return
            if len(batch) >= self._batch_size:
                yield batch
                batch = []
                continue

            # 2. A hole at the cursor (a later seq is stored, ours is not, at least not yet).
            if rows:
                if hole_since is None:
                    hole_since = loop.time()
                if not finished and not status_checked:
                    status_checked = True
                    if await self._source.is_finished(self._execution_id):
                        finished = True
                        rows, read_now = await self._read(cursor)  # the hole may have filled meanwhile
                        continue
                if finished:
                    cursor = self._skip_hole(cursor, rows[0].seq, "the execution has finished")
                    continue
                if loop.time() - hole_since >= self._gap_grace_s:
                    cursor = self._skip_hole(
                        cursor, rows[0].seq, f"still missing after {self._gap_grace_s:g} s"
                    )
                    continue
                read_now = False
            elif finished and not read_now:
                if batch:
                    yield batch
                return  # everything stored has been read and nothing more will come

            # 3. Unless more is ready, wait for a wake-up, the batch deadline or the poll.
            if not read_now:
                if batch and loop.time() >= batch_deadline:
                    yield batch
                    batch = []
                    continue
                timeout = self._poll_interval_s
                if batch:
                    timeout = min(timeout, batch_deadline - loop.time())
                if hole_since is not None:
                    timeout = min(timeout, max(hole_since + self._gap_grace_s - loop.time(), 0.01))
                woken = await waiter.wait(timeout)
                if not woken and batch and loop.time() >= batch_deadline:
                    continue

            # 4. Read a page from the cursor. Nothing new: a terminal row status means nothing more
            #    will come (read once more: the finishing transaction may have committed after our read).
            waiter.clear()
            rows, read_now = await self._read(cursor)
            status_checked = False
            if not rows and not finished and await self._source.is_finished(self._execution_id):
                finished = True
                rows, read_now = await self._read(cursor)


class ControlWatch:
    """``async with ControlWatch(...) as feed:`` a :class:`LiveControl` of one execution.

    Live on entry: the waiter is registered and the current control read before ``__aenter__``
    returns. Changes that land between two reads are coalesced (the control is a desired state,
    and ``step_seq`` counts steps). Woken by notifications, with a slow poll as the fallback.
    """

    def __init__(
        self,
        read: Callable[[], Awaitable[Control]],
        waiters: WaiterSource,
        execution_id: str,
        *,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    ) -> None:
        self._read = read
        self._waiters = waiters
        self._execution_id = execution_id
        self._poll_interval_s = poll_interval_s
        self._stack = ExitStack()

    async def __aenter__(self) -> LiveControl:
        waiter = self._stack.enter_context(self._waiters.waiter(CONTROL_CHANNEL, self._execution_id))
        try:
            first = await self._read()
        except BaseException:
            self._stack.close()
            raise
        return LiveControl(self._read, waiter, first, self._poll_interval_s)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()


class LiveControl:
    """The control state of one execution as last read, and a way to wait for its next change
    (the ``ControlFeed`` port)."""

    __slots__ = ("_poll_interval_s", "_read", "_waiter", "latest")

    def __init__(
        self, read: Callable[[], Awaitable[Control]], waiter: Waiter, first: Control, poll_interval_s: float
    ) -> None:
        self._read = read
        self._waiter = waiter
        self._poll_interval_s = poll_interval_s
        self.latest = first

    async def changed(self, timeout_s: float | None = None, *, poll_s: float | None = None) -> Control | None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while True:
            wait = self._poll_interval_s if poll_s is None else poll_s
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    return None
                wait = min(wait, left)
            await self._waiter.wait(wait)
            self._waiter.clear()
            control = await self._read()
            if control.version != self.latest.version:
                self.latest = control
                return control

    async def current(self) -> Control:
        if self._waiter.is_set:
            self._waiter.clear()
            self.latest = await self._read()
        return self.latest

    async def __aiter__(self) -> AsyncIterator[Control]:
        yield self.latest
        while True:
            control = await self.changed()
            if control is not None:
                yield control
