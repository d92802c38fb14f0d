"""JSONL streaming-batch encoder for ``httpBatchStreamLink`` (PROTOCOL.md §2.4).

Line 1 (head) declares every call ``i`` as a promise in chunk ``i``: ``{"i": [[0], [null, 0, i]]}``.
Each call then resolves, in completion order, with one line:

* plain result (no async members): ``[i, 0, [[{"result": {"data": value}}]]]`` — the simple form;
* error: ``[i, 0, [[{"error": shape}]]]``;
* a result that is itself streamed (an async iterator, or a dict with awaitable / async-iterable
  members) uses the nested form the reference server emits for ``streamQuery``:
  ``[i, 0, [[{"result": 0}], ["result", 0, r]]]``, ``[r, 0, [[{"data": 0}], ["data", 0, d]]]``,
  ``[d, 0, [[0], [null, 1, s]]]`` and then ``[s, 1, [[item]]]`` per item, ``[s, 0, [[]]]`` at the
  end, or ``[s, 0, [[value]]]`` when the iterator yields ``StreamReturn(value)``
  (``[s, 2, shape]`` on error); a dict member promise ``k`` resolves with ``[p, 0, [[v]]]``
  (``[p, 1, shape]`` when it fails).

Every line as a whole goes through the transformer's ``serialize`` (superjson meta paths are
relative to the line). An optional keep-alive writes a single space while nothing is ready.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final

from chaingraph_executor.trpc.router import StreamReturn, aclose_quietly, is_data_stream
from chaingraph_executor.trpc.superjson import UNDEFINED
from chaingraph_executor.trpc.transformers import dumps

__all__ = ["CallOutcome", "jsonl_stream"]

PROMISE: Final = 0
ITERABLE: Final = 1
FULFILLED: Final = 0  # promise status
REJECTED: Final = 1
RETURN: Final = 0  # iterable status
YIELD: Final = 1
ERROR: Final = 2

_END: Final = object()
_log: Final = logging.getLogger(__name__)
_QUEUE_SIZE: Final = 64


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """How one call of the batch ended: ``data`` (may be a stream) or an untransformed error shape."""

    data: Any = UNDEFINED
    error: dict[str, Any] | None = None


#: ``(call index, exception) -> untransformed error shape``
FormatError = Callable[[int, BaseException], dict[str, Any]]


class _Encoder:
    def __init__(self, serialize: Callable[[Any], Any], format_error: FormatError, n_calls: int) -> None:
        self.serialize = serialize
        self.format_error = format_error
        self.queue: asyncio.Queue[Any] = asyncio.Queue(_QUEUE_SIZE)
        self.counter = n_calls
        self.tasks: set[asyncio.Task[None]] = set()
        self.running = 0
        self.members: list[Any] = []  # awaitables / iterators handed to us (closed at the end)

    def line(self, chunk: Any) -> str:
        return dumps(self.serialize(chunk)) + "\n"

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.running += 1
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        if (error := task.exception()) is not None:  # a chunk that could not even be formatted
            _log.error("JSONL chunk failed", exc_info=error)
        self.running -= 1
        if self.running == 0:  # every chunk is queued: the end marker goes after them
            end = asyncio.ensure_future(self.queue.put(_END))
            self.tasks.add(end)
            end.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        """Cancel whatever still runs and close what was never awaited / iterated."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for member in self.members:
            if inspect.iscoroutine(member):
                member.close()
            elif isinstance(member, AsyncIterable):
                await aclose_quietly(member)

    # ------------------------------------------------------------------ values
    def encode(self, value: Any, call: int) -> list[Any]:
        """Encoded value: ``[[value]]`` or ``[[value], [key, kind, chunk id], ...]``; ``[[]]`` = undefined."""
        if value is UNDEFINED:
            return [[]]
        if inspect.isawaitable(value):
            return [[0], [None, PROMISE, self.promise(value, call)]]
        if isinstance(value, AsyncIterable):
            return [[0], [None, ITERABLE, self.iterable(value, call)]]
        if isinstance(value, dict) and is_data_stream(value):
            plain: dict[Any, Any] = {}
            defs: list[Any] = [[plain]]
            for key, member in value.items():
                if inspect.isawaitable(member):
                    plain[key] = 0
                    defs.append([key, PROMISE, self.promise(member, call)])
                elif isinstance(member, AsyncIterable):
                    plain[key] = 0
                    defs.append([key, ITERABLE, self.iterable(member, call)])
                else:
                    plain[key] = member
            return defs
        return [[value]]

    def alloc(self) -> int:
        chunk_id = self.counter
        self.counter += 1
        return chunk_id

    def promise(self, awaitable: Awaitable[Any], call: int) -> int:
        self.members.append(awaitable)
        chunk_id = self.alloc()
        self.spawn(self._promise(chunk_id, awaitable, call))
        return chunk_id

    async def _promise(self, chunk_id: int, awaitable: Awaitable[Any], call: int) -> None:
        try:
            value = await awaitable
            text = self.line([chunk_id, FULFILLED, self.encode(value, call)])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - becomes the rejection chunk
            text = self.line([chunk_id, REJECTED, self.format_error(call, exc)])
        await self.queue.put(text)

    def iterable(self, iterable: AsyncIterable[Any], call: int) -> int:
        self.members.append(iterable)
        chunk_id = self.alloc()
        self.spawn(self._iterable(chunk_id, iterable, call))
        return chunk_id

    async def _iterable(self, chunk_id: int, iterable: AsyncIterable[Any], call: int) -> None:
        iterator: AsyncIterator[Any] = aiter(iterable)
        try:
            returned: Any = UNDEFINED
            async for item in iterator:
                if type(item) is StreamReturn:
                    returned = item.value
                    break
                await self.queue.put(self.line([chunk_id, YIELD, self.encode(item, call)]))
            text = self.line([chunk_id, RETURN, self.encode(returned, call)])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - becomes the error chunk
            text = self.line([chunk_id, ERROR, self.format_error(call, exc)])
        finally:
            await aclose_quietly(iterator)
        await self.queue.put(text)

    # ------------------------------------------------------------------ calls
    async def call(self, index: int, start: Callable[[], Awaitable[CallOutcome]]) -> None:
        try:
            result = await start()
            if result.error is not None:
                text = self.line([index, FULFILLED, [[{"error": result.error}]]])
            elif not is_data_stream(result.data) and not inspect.isawaitable(result.data):
                text = self.line([index, FULFILLED, [[{"result": {"data": result.data}}]]])
            else:
                result_id, data_id = self.alloc(), self.alloc()
                # encode (and so register the async members) before any await: a cancelled
                # stream must find them to close them; their chunks may overtake these lines,
                # which the client buffers per chunk id
                data_line = self.line([data_id, FULFILLED, self.encode(result.data, index)])
                for chunk in (
                    [index, FULFILLED, [[{"result": 0}], ["result", PROMISE, result_id]]],
                    [result_id, FULFILLED, [[{"data": 0}], ["data", PROMISE, data_id]]],
                ):
                    await self.queue.put(self.line(chunk))
                text = data_line
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a value the transformer cannot serialize
            text = self.line([index, FULFILLED, [[{"error": self.format_error(index, exc)}]]])
        await self.queue.put(text)


async def jsonl_stream(
    calls: Sequence[Callable[[], Awaitable[CallOutcome]]],
    *,
    serialize: Callable[[Any], Any],
    format_error: FormatError,
    ping_ms: int | None = None,
) -> AsyncIterator[str]:
    """Yield the JSONL body (one string per line, plus ``" "`` keep-alives) for a batch.

    ``calls[i]()`` starts call ``i``; calls start after the head line was taken. Closing the
    generator (client gone) cancels every pending call and closes the streamed iterators.
    """
    encoder = _Encoder(serialize, format_error, len(calls))
    head = {str(i): [[0], [None, PROMISE, i]] for i in range(len(calls))}
    getter: asyncio.Future[Any] | None = None
    try:
        yield encoder.line(head)
        if not calls:
            return
        for index, start in enumerate(calls):
            encoder.spawn(encoder.call(index, start))
        timeout = ping_ms / 1000 if ping_ms else None
        while True:
            if timeout is None:
                item = await encoder.queue.get()
            else:
                if getter is None:
                    getter = asyncio.ensure_future(encoder.queue.get())
                done, _ = await asyncio.wait({getter}, timeout=timeout)
                if not done:
                    yield " "
                    continue
                item, getter = getter.result(), None
            if item is _END:
                return
            yield item
    finally:
        if getter is not None:
            getter.cancel()
        await encoder.close()
