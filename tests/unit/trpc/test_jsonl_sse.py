"""The JSONL batch encoder and the SSE producer, decoded back with the harness' decoders."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from chaingraph_executor.trpc import UNDEFINED, TRPCError, tracked
from chaingraph_executor.trpc.envelopes import error_shape
from chaingraph_executor.trpc.jsonl import CallOutcome, jsonl_stream
from chaingraph_executor.trpc.sse import sse_stream
from chaingraph_executor.trpc.transformers import PLAIN, SUPERJSON

D = datetime(2024, 1, 1, tzinfo=UTC)


def shape_of(index: int, exc: BaseException) -> dict[str, Any]:
    err = exc if isinstance(exc, TRPCError) else TRPCError("INTERNAL_SERVER_ERROR", str(exc), cause=exc)
    return error_shape(err, path=f"call{index}")


async def collect(stream: AsyncIterator[str]) -> list[str]:
    return [chunk async for chunk in stream]


def outcome_after(delay: float, outcome: CallOutcome) -> Callable[[], Awaitable[CallOutcome]]:
    async def start() -> CallOutcome:
        await asyncio.sleep(delay)
        return outcome

    return start


# ------------------------------------------------------------------------------------ JSONL
async def test_simple_form_in_completion_order(harness: ModuleType) -> None:
    error = error_shape(TRPCError("NOT_FOUND", "thing not found"), path="notFoundErr")
    lines = await collect(
        jsonl_stream(
            [
                outcome_after(0.05, CallOutcome(data={"sleptMs": 50})),
                outcome_after(0.0, CallOutcome(data={"greeting": "hi", "at": D})),
                outcome_after(0.01, CallOutcome(error=error)),
                outcome_after(0.0, CallOutcome(data=UNDEFINED)),
            ],
            serialize=SUPERJSON.serialize,
            format_error=shape_of,
        )
    )
    assert all(line.endswith("\n") for line in lines)
    parsed = [json.loads(line) for line in lines]
    assert parsed[0] == {"json": {str(i): [[0], [None, 0, i]] for i in range(4)}}
    assert [p["json"][0] for p in parsed[1:]] == [1, 3, 2, 0]  # out of order, as they complete
    assert parsed[1] == {
        "json": [1, 0, [[{"result": {"data": {"greeting": "hi", "at": "2024-01-01T00:00:00.000Z"}}}]]],
        "meta": {"values": {"2.0.0.result.data.at": ["Date"]}},
    }
    decoded = harness.decode_jsonl("".join(lines), True)
    assert decoded["0"] == {"result": {"data": {"sleptMs": 50}}}
    assert decoded["1"] == {
        "result": {"data": {"greeting": "hi", "at": {"$date": "2024-01-01T00:00:00.000Z"}}}
    }
    assert decoded["2"]["error"]["data"] == {"code": "NOT_FOUND", "httpStatus": 404, "path": "notFoundErr"}
    assert decoded["3"] == {"result": {"data": {"$undefined": True}}}


async def test_nested_form_for_iterators_and_deferred_members(harness: ModuleType) -> None:
    async def items() -> AsyncIterator[dict[str, Any]]:
        for i in (1, 2):
            await asyncio.sleep(0.005)
            yield {"i": i, "at": D}

    async def later() -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"value": "deferred"}

    async def broken() -> dict[str, Any]:
        raise TRPCError("FORBIDDEN", "no")

    async def failing_items() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("stream broke")

    text = "".join(
        await collect(
            jsonl_stream(
                [
                    outcome_after(0, CallOutcome(data=items())),
                    outcome_after(
                        0, CallOutcome(data={"now": "immediate", "later": later(), "bad": broken()})
                    ),
                    outcome_after(0, CallOutcome(data=failing_items())),
                ],
                serialize=SUPERJSON.serialize,
                format_error=shape_of,
            )
        )
    )
    lines = [json.loads(line)["json"] for line in text.splitlines()]
    assert lines[1][2] == [[{"result": 0}], ["result", 0, 3]]  # the reference's nesting
    decoded = harness.decode_jsonl(text, True)
    assert decoded["0"]["result"]["data"] == {
        "$iterable": [
            {"i": 1, "at": {"$date": "2024-01-01T00:00:00.000Z"}},
            {"i": 2, "at": {"$date": "2024-01-01T00:00:00.000Z"}},
        ],
        "$return": {"$undefined": True},
    }
    data1 = decoded["1"]["result"]["data"]
    assert data1["now"] == "immediate" and data1["later"] == {"value": "deferred"}
    assert data1["bad"]["$rejected"]["data"]["code"] == "FORBIDDEN"
    data2 = decoded["2"]["result"]["data"]
    assert data2["$iterable"] == [1] and data2["$error"]["data"]["code"] == "INTERNAL_SERVER_ERROR"


async def test_plain_transformer_lines() -> None:
    lines = await collect(
        jsonl_stream(
            [outcome_after(0, CallOutcome(data={"ok": True, "nothing": UNDEFINED, "at": D}))],
            serialize=PLAIN.serialize,
            format_error=shape_of,
        )
    )
    assert lines == [
        '{"0":[[0],[null,0,0]]}\n',
        '[0,0,[[{"result":{"data":{"ok":true,"at":"2024-01-01T00:00:00.000Z"}}}]]]\n',
    ]


async def test_unserializable_result_becomes_an_error_line() -> None:
    lines = await collect(
        jsonl_stream(
            [outcome_after(0, CallOutcome(data={"x": object()}))],
            serialize=SUPERJSON.serialize,
            format_error=shape_of,
        )
    )
    assert json.loads(lines[1])["json"][2][0][0]["error"]["data"]["code"] == "INTERNAL_SERVER_ERROR"


async def test_keepalive_spaces() -> None:
    chunks = await collect(
        jsonl_stream(
            [outcome_after(0.12, CallOutcome(data=1))],
            serialize=SUPERJSON.serialize,
            format_error=shape_of,
            ping_ms=30,
        )
    )
    assert " " in chunks and chunks[-1].startswith('{"json":[0,0')


async def test_closing_the_stream_cancels_calls_and_iterators() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            while True:
                await asyncio.sleep(0.001)
                yield 1
        finally:
            closed.set()

    stream = jsonl_stream(
        [outcome_after(0, CallOutcome(data=endless()))], serialize=SUPERJSON.serialize, format_error=shape_of
    )
    seen = 0
    async for _ in stream:
        seen += 1
        if seen == 8:
            break
    await stream.aclose()
    await asyncio.wait_for(closed.wait(), 1)


# ------------------------------------------------------------------------------------ SSE
def fmt(exc: BaseException) -> dict[str, Any]:
    return shape_of(0, exc)


async def events_of(*values: Any, fail: BaseException | None = None) -> AsyncIterator[Any]:
    for value in values:
        yield value
    if fail is not None:
        raise fail


async def test_sse_tracked_untracked_restore_id_and_return(harness: ModuleType) -> None:
    text = "".join(
        await collect(
            sse_stream(
                events_of(tracked("a", {"k": "tracked-a"}), {"k": "untracked"}, tracked("b", {"at": D})),
                serialize=SUPERJSON.serialize,
                format_error=fmt,
            )
        )
    )
    assert text.startswith("event: connected\ndata: {}\n\n")
    assert 'data: {"json":{"k":"tracked-a"}}\nid: a\n\n' in text
    assert 'data: {"json":{"k":"untracked"}}\nid: \n\nevent: restore-id\ndata: \nid: a\n\n' in text
    assert text.endswith("event: return\ndata: \n\n")
    events = harness.decode_sse(text, True)
    assert [(e["event"], e["id"]) for e in events] == [
        ("connected", None),
        ("message", "a"),
        ("message", ""),
        ("restore-id", "a"),
        ("message", "b"),
        ("return", None),
    ]
    assert events[4]["data"] == {"at": {"$date": "2024-01-01T00:00:00.000Z"}}


async def test_sse_untracked_only_and_resume_with_last_event_id() -> None:
    fresh = "".join(
        await collect(sse_stream(events_of({"i": 0}), serialize=PLAIN.serialize, format_error=fmt))
    )
    assert 'data: {"i":0}\n\n' in fresh and "restore-id" not in fresh
    resumed = "".join(
        await collect(
            sse_stream(events_of({"i": 0}), serialize=PLAIN.serialize, format_error=fmt, last_event_id="7")
        )
    )
    assert "id: \n\nevent: restore-id\ndata: \nid: 7\n\n" in resumed


async def test_sse_errors_and_client_options(harness: ModuleType) -> None:
    failed = "".join(
        await collect(
            sse_stream(
                events_of({"before": "error"}, fail=TRPCError("FORBIDDEN", "subscription failed")),
                serialize=SUPERJSON.serialize,
                format_error=fmt,
                client_options={"reconnectAfterInactivityMs": 1000},
            )
        )
    )
    events = harness.decode_sse(failed, True)
    assert events[0] == {"event": "connected", "id": None, "data": {"reconnectAfterInactivityMs": 1000}}
    assert events[-1]["event"] == "serialized-error"
    assert events[-1]["data"]["data"]["code"] == "FORBIDDEN"
    assert "event: return" not in failed
    early = "".join(
        await collect(
            sse_stream(
                TRPCError("BAD_REQUEST", "Invalid input"), serialize=SUPERJSON.serialize, format_error=fmt
            )
        )
    )
    assert [e["event"] for e in harness.decode_sse(early, True)] == ["connected", "serialized-error"]


async def test_sse_ping_during_silence() -> None:
    async def slow() -> AsyncIterator[int]:
        await asyncio.sleep(0.13)
        yield 1

    text = "".join(await collect(sse_stream(slow(), serialize=PLAIN.serialize, format_error=fmt, ping_ms=30)))
    assert text.count("event: ping\ndata: \n\n") >= 2
    assert text.endswith("data: 1\n\nevent: return\ndata: \n\n")


@pytest.mark.parametrize("ping_ms", [None, 20])
async def test_sse_close_stops_the_subscription(ping_ms: int | None) -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            while True:
                await asyncio.sleep(0.01)
                yield 1
        finally:
            closed.set()

    stream = sse_stream(endless(), serialize=PLAIN.serialize, format_error=fmt, ping_ms=ping_ms)
    assert (await anext(stream)).startswith("event: connected")
    await anext(stream)
    await stream.aclose()
    await asyncio.wait_for(closed.wait(), 1)


async def test_closing_early_leaves_no_unawaited_members(recwarn: pytest.WarningsRecorder) -> None:
    async def never() -> int:
        await asyncio.sleep(10)
        return 1

    async def items() -> AsyncIterator[int]:
        yield 1

    stream = jsonl_stream(
        [
            outcome_after(0, CallOutcome(data={"later": never(), "items": items()})),
            outcome_after(10, CallOutcome(data=1)),
        ],
        serialize=SUPERJSON.serialize,
        format_error=shape_of,
    )
    await anext(stream)  # head
    await anext(stream)  # first line of call 0
    await stream.aclose()
    gc.collect()
    assert not [w for w in recwarn.list if issubclass(w.category, RuntimeWarning)]
