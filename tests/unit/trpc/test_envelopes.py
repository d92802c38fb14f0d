"""Codes, error shapes, the status rule, lastEventId merging and WebSocket message parsing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaingraph_executor.trpc.codes import CODES, TRPCError
from chaingraph_executor.trpc.envelopes import (
    WSParseError,
    WSRequest,
    WSStop,
    batch_status,
    error_envelope,
    error_shape,
    merge_last_event_id,
    parse_connection_params,
    parse_connection_params_json,
    parse_ws_connection_params,
    parse_ws_message,
    result_envelope,
)
from chaingraph_executor.trpc.superjson import UNDEFINED
from chaingraph_executor.trpc.transformers import PLAIN, SUPERJSON

VECTORS = Path(__file__).resolve().parents[2] / "fixtures" / "trpc_vectors"


def test_code_table() -> None:
    assert CODES["NOT_FOUND"] == (-32004, 404)
    assert CODES["PARSE_ERROR"] == (-32700, 400)
    assert CODES["CLIENT_CLOSED_REQUEST"] == (-32099, 499)
    assert {CODES[k][0] for k in ("INTERNAL_SERVER_ERROR", "NOT_IMPLEMENTED", "GATEWAY_TIMEOUT")} == {-32603}
    assert len(CODES) == 21
    with pytest.raises(ValueError, match="unknown tRPC error code"):
        TRPCError("NOPE")


def test_trpc_error_defaults() -> None:
    assert TRPCError("FORBIDDEN").message == "FORBIDDEN"
    cause = KeyError("x")
    err = TRPCError("BAD_GATEWAY", cause=cause)
    assert err.__cause__ is cause and err.http_status == 502 and err.jsonrpc_code == -32603


def test_error_shape_like_the_reference() -> None:
    shape = error_shape(TRPCError("NOT_FOUND", "thing not found"), path="notFoundErr")
    assert shape == {
        "message": "thing not found",
        "code": -32004,
        "data": {"code": "NOT_FOUND", "httpStatus": 404, "path": "notFoundErr"},
    }
    no_path = error_shape(TRPCError("PARSE_ERROR", "x"))
    assert "path" not in no_path["data"]
    assert error_envelope(shape, SUPERJSON) == {"error": {"json": shape}}


def test_error_shape_dev_stack_extras_and_formatter() -> None:
    try:
        raise RuntimeError("kaboom")
    except RuntimeError as exc:
        err = TRPCError("INTERNAL_SERVER_ERROR", "kaboom", cause=exc, data_extra={"zodError": None})
    shape = error_shape(err, path="boom", dev=True)
    assert "RuntimeError: kaboom" in shape["data"]["stack"]
    assert shape["data"]["zodError"] is None
    assert "stack" not in error_shape(err, path="boom")

    def formatter(shape: dict[str, Any], error: TRPCError) -> dict[str, Any]:
        return {**shape, "data": {**shape["data"], "traceId": "t1"}}

    assert error_shape(err, formatter=formatter)["data"]["traceId"] == "t1"


def test_result_envelope_and_undefined() -> None:
    assert result_envelope({"x": 1}, SUPERJSON) == {"result": {"data": {"json": {"x": 1}}}}
    assert result_envelope(UNDEFINED, PLAIN) == {"result": {}}
    assert result_envelope({"ok": True, "nothing": UNDEFINED}, PLAIN) == {"result": {"data": {"ok": True}}}


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [([200, 200], 200), ([200, 200, 404], 207), ([404, 404], 404), ([415], 415), ([400, 401], 207)],
)
def test_batch_status(statuses: list[int], expected: int) -> None:
    assert batch_status(statuses) == expected


def test_merge_last_event_id() -> None:
    assert merge_last_event_id({"limit": 3}, "2") == {"limit": 3, "lastEventId": "2"}
    assert merge_last_event_id(UNDEFINED, "2") == {"lastEventId": "2"}
    assert merge_last_event_id(None, "2") == {"lastEventId": "2"}
    assert merge_last_event_id("primitive", "2") == "primitive"
    assert merge_last_event_id({"limit": 3}, None) == {"limit": 3}


def test_connection_params() -> None:
    assert parse_connection_params(None) is None
    assert parse_connection_params({"token": "abc"}) == {"token": "abc"}
    with pytest.raises(TRPCError, match="Invalid connection params shape") as info:
        parse_connection_params({"n": 1})
    assert info.value.code == "PARSE_ERROR"
    with pytest.raises(TRPCError, match="Not JSON-parsable query params"):
        parse_connection_params_json("{x")
    assert parse_ws_connection_params({"method": "connectionParams", "data": None}).data is None
    with pytest.raises(TRPCError):
        parse_ws_connection_params({"method": "connectionParams"})


def test_parse_ws_request_and_stop() -> None:
    msg = parse_ws_message(
        {
            "id": 1,
            "method": "subscription",
            "params": {"path": "onPost", "input": {"json": {"limit": 4}}, "lastEventId": "2"},
        },
        SUPERJSON,
    )
    assert msg == WSRequest(id=1, method="subscription", path="onPost", input={"limit": 4}, last_event_id="2")
    assert parse_ws_message(
        {"id": "a", "jsonrpc": "2.0", "method": "subscription.stop"}, SUPERJSON
    ) == WSStop(id="a", jsonrpc="2.0")
    missing_input = parse_ws_message({"id": 1, "method": "query", "params": {"path": "whoami"}}, PLAIN)
    assert isinstance(missing_input, WSRequest) and missing_input.input is UNDEFINED
    assert parse_ws_message({"id": None, "method": "query", "params": {"path": "x"}}, PLAIN).id is None


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not an object", "Not an object"),
        ({"id": 1, "method": "bogus", "params": {"path": "x"}}, "Invalid procedure type"),
        ({"id": 1, "method": "query"}, "Not an object"),
        ({"id": 1, "jsonrpc": "1.0", "method": "query", "params": {"path": "x"}}, "Must be JSONRPC 2.0"),
        ({"id": True, "method": "query", "params": {"path": "x"}}, "Invalid request id"),
        ({"method": "query", "params": {"path": "x"}}, "Invalid request id"),
        ({"id": 1, "method": "query", "params": {"path": 3}}, "Invalid string"),
        ({"id": 1, "method": "query", "params": {"path": "x", "lastEventId": 3}}, "Invalid string"),
        (
            {
                "id": 1,
                "method": "query",
                "params": {"path": "x", "input": {"json": 1, "meta": {"values": ["?"]}}},
            },
            "unknown annotation",
        ),
    ],
)
def test_parse_ws_message_rejects(message: Any, reason: str) -> None:
    with pytest.raises(WSParseError, match=reason):
        parse_ws_message(message, SUPERJSON)


def test_every_sent_ws_frame_of_the_vectors_parses_like_the_reference() -> None:
    """Frames the reference rejected as a whole (id:null PARSE_ERROR other than "`id` is required")
    are rejected by our parser too; all others parse."""
    for path in sorted(VECTORS.glob("raw-ws-*.json")):
        vec = json.loads(path.read_text())
        if "connection-params" in vec["scenario"] or "missing-input" in vec["scenario"]:
            continue
        rejected = any(
            '"id":null' in frame and "PARSE_ERROR" in frame and "is required" not in frame
            for frame in vec["observed"]
        )
        for frame in vec["sent"]:
            if frame in ("PING", "PONG"):
                continue
            try:
                parsed = json.loads(frame)
            except ValueError:
                assert rejected, vec["scenario"]
                continue
            items = parsed if isinstance(parsed, list) else [parsed]
            try:
                for item in items:
                    parse_ws_message(item, SUPERJSON)
            except WSParseError:
                assert rejected, vec["scenario"]
            else:
                assert not rejected, vec["scenario"]
