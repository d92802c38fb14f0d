"""SuperJSON codec: round trips, golden checks against every envelope in the captured vectors,
path escaping (legacy and v1), nested annotations, registration."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import BaseModel

from chaingraph_executor.domain.events import ErrorInfo
from chaingraph_executor.trpc import superjson
from chaingraph_executor.trpc.superjson import (
    UNDEFINED,
    URL,
    BigInt,
    MapEntries,
    RegExpValue,
    SetItems,
    SuperJSON,
    SuperJSONError,
    SuperMap,
    TypedArray,
    deserialize,
    format_date,
    parse_path,
    serialize,
)

VECTORS = Path(__file__).resolve().parents[2] / "fixtures" / "trpc_vectors"
D = datetime(2024, 1, 1, tzinfo=UTC)


def roundtrip(value: Any) -> Any:
    return deserialize(json.loads(json.dumps(serialize(value))))


# ------------------------------------------------------------------------------------ encode
def test_plain_values_have_no_meta() -> None:
    assert serialize({"x": 1}) == {"json": {"x": 1}}
    assert serialize([1, "a", None, True]) == {"json": [1, "a", None, True]}
    assert serialize(None) == {"json": None}


def test_unchanged_containers_are_not_copied() -> None:
    value = {"a": [1, 2, {"b": "c"}], "d": 1.5}
    assert serialize(value)["json"] is value


def test_undefined_root_and_members() -> None:
    assert serialize(UNDEFINED) == {"json": None, "meta": {"values": ["undefined"]}}
    assert serialize({"ok": True, "nothing": UNDEFINED}) == {
        "json": {"ok": True, "nothing": None},
        "meta": {"values": {"nothing": ["undefined"]}},
    }
    assert roundtrip([UNDEFINED, None]) == [UNDEFINED, None]


def test_dates_are_iso_millis_utc() -> None:
    assert format_date(datetime(2024, 1, 1, 0, 0, 1, 999_999, tzinfo=UTC)) == "2024-01-01T00:00:01.999Z"
    plus2 = datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_date(plus2) == "2024-01-01T00:00:00.000Z"
    assert format_date(datetime(2024, 1, 1)) == "2024-01-01T00:00:00.000Z"  # naive = UTC
    assert serialize(D) == {"json": "2024-01-01T00:00:00.000Z", "meta": {"values": ["Date"]}}
    decoded = roundtrip({"at": plus2})["at"]
    assert decoded == plus2 and decoded.tzinfo is not None


def test_numbers() -> None:
    env = serialize([math.nan, math.inf, -math.inf, -0.0, 0.0, 1.5])
    assert env["json"] == ["NaN", "Infinity", "-Infinity", "-0", 0.0, 1.5]
    assert env["meta"]["values"] == {"0": ["number"], "1": ["number"], "2": ["number"], "3": ["number"]}
    back = roundtrip([math.nan, math.inf, -math.inf, -0.0])
    assert math.isnan(back[0]) and back[1:3] == [math.inf, -math.inf]
    assert math.copysign(1, back[3]) == -1


def test_bigint_only_outside_the_safe_range_but_always_decoded() -> None:
    safe = 2**53 - 1
    assert serialize(safe) == {"json": safe}
    assert serialize(-safe) == {"json": -safe}
    assert serialize(safe + 1) == {"json": str(safe + 1), "meta": {"values": ["bigint"]}}
    assert serialize(BigInt(10)) == {"json": "10", "meta": {"values": ["bigint"]}}
    decoded = deserialize({"json": "10", "meta": {"values": ["bigint"]}})
    assert decoded == 10 and isinstance(decoded, BigInt)
    assert serialize(decoded)["meta"]["values"] == ["bigint"]  # fidelity: a bigint stays a bigint


def test_map_set_and_nested_annotations() -> None:
    value = SuperMap({"a": D, "b": SuperMap({1: {D}})})
    env = serialize(value)
    assert env["json"] == [["a", "2024-01-01T00:00:00.000Z"], ["b", [[1, ["2024-01-01T00:00:00.000Z"]]]]]
    assert env["meta"]["values"] == [
        "map",
        {"0.1": ["Date"], "1.1": ["map", {"0.1": ["set", {"0": ["Date"]}]}]},
    ]
    back = roundtrip(value)
    assert isinstance(back, SuperMap) and back == value
    assert isinstance(back["b"], SuperMap) and back["b"][1] == {D}


def test_unhashable_map_keys_and_set_items() -> None:
    back = roundtrip(MapEntries([({"o": 1}, D), ([1, 2], "arr")]))
    assert isinstance(back, MapEntries)
    assert list(back) == [({"o": 1}, D), ([1, 2], "arr")]
    items = roundtrip(SetItems([{"a": D}]))
    assert isinstance(items, SetItems) and items == [{"a": D}]
    assert roundtrip(frozenset({1, 2})) == {1, 2}


def test_error_regexp_url_bytes_typed_arrays() -> None:
    value = {
        "e": ErrorInfo("boom", "TypeError"),
        "x": ValueError("bad"),
        "r": RegExpValue("ab+c", "gi"),
        "u": URL("https://example.com/a?b=1"),
        "b": b"\x00\x01\xff",
        "f": TypedArray("Float64Array", (1.5, -2.0)),
    }
    env = serialize(value)
    assert env["json"]["e"] == {"name": "TypeError", "message": "boom"}
    assert env["json"]["x"] == {"name": "ValueError", "message": "bad"}
    assert env["json"]["r"] == "/ab+c/gi"
    assert env["meta"]["values"]["b"] == [["typed-array", "Uint8Array"]]
    back = roundtrip(value)
    assert back["e"] == ErrorInfo("boom", "TypeError")
    assert back["x"] == ErrorInfo("bad", "ValueError")
    assert back["r"] == RegExpValue("ab+c", "gi")
    assert back["u"] == "https://example.com/a?b=1" and isinstance(back["u"], URL)
    assert back["b"] == b"\x00\x01\xff"
    assert back["f"] == TypedArray("Float64Array", (1.5, -2.0))


def test_models_dataclasses_enums_dates() -> None:
    class Color(Enum):
        RED = "red"

    class Model(BaseModel):
        at: datetime
        color: Color

    env = serialize({"m": Model(at=D, color=Color.RED), "day": date(2024, 2, 3), "c": Color.RED})
    assert env["json"] == {
        "m": {"at": "2024-01-01T00:00:00.000Z", "color": "red"},
        "day": "2024-02-03",
        "c": "red",
    }
    assert env["meta"]["values"] == {"m.at": ["Date"]}


def test_unknown_types_are_refused() -> None:
    with pytest.raises(SuperJSONError):
        serialize({"x": object()})


# ------------------------------------------------------------------------------------ paths
def test_path_escaping_needs_v1_only_for_backslashes() -> None:
    dotted = serialize({"a.b": D})
    assert dotted["meta"] == {"values": {"a\\.b": ["Date"]}}  # same in legacy and v1: no "v"
    slashed = serialize({"c\\d": D, "e\\.f": UNDEFINED})
    assert slashed["meta"] == {"values": {"c\\\\d": ["Date"], "e\\\\\\.f": ["undefined"]}, "v": 1}
    assert roundtrip({"c\\d": D, "e\\.f": UNDEFINED, "g.h": D}) == {"c\\d": D, "e\\.f": UNDEFINED, "g.h": D}


def test_parse_path_v1_and_legacy() -> None:
    assert parse_path("a.b.0", legacy=False) == ["a", "b", "0"]
    assert parse_path("a\\.b.c", legacy=False) == ["a.b", "c"]
    assert parse_path("c\\\\d", legacy=False) == ["c\\d"]
    assert parse_path("c\\d", legacy=True) == ["c\\d"]  # legacy: a lone backslash is a character
    assert parse_path("a\\.b", legacy=True) == ["a.b"]
    with pytest.raises(SuperJSONError):
        parse_path("c\\d", legacy=False)


def test_legacy_envelope_decodes() -> None:
    legacy = {"json": {"c\\d": "2024-01-01T00:00:00.000Z"}, "meta": {"values": {"c\\d": ["Date"]}}}
    assert deserialize(legacy) == {"c\\d": D}


def test_referential_equalities_are_ignored() -> None:
    env = {
        "json": {"d": "2024-01-01T00:00:00.000Z", "n": [{"d": "2024-01-01T00:00:00.000Z"}]},
        "meta": {
            "values": {"d": ["Date"], "n.0.d": ["Date"]},
            "referentialEqualities": {"d": ["n.0.d"]},
            "v": 1,
        },
    }
    assert deserialize(env) == {"d": D, "n": [{"d": D}]}


# ------------------------------------------------------------------------------------ decode errors
@pytest.mark.parametrize("payload", [None, 5, "x", [], {"meta": {}}, {"name": "x"}])
def test_payload_without_json_is_undefined(payload: Any) -> None:
    assert deserialize(payload) is UNDEFINED


@pytest.mark.parametrize(
    "envelope",
    [
        {"json": "x", "meta": {"values": ["nope"]}},
        {"json": "not a date", "meta": {"values": ["Date"]}},
        {"json": {"a": 1}, "meta": {"values": {"b.c": ["Date"]}}},
        {"json": 1, "meta": {"values": [["custom", "unregistered"]]}},
        {"json": [1], "meta": {"values": [["typed-array", "Nope"]]}},
        {"json": 1, "meta": {"values": []}},
    ],
)
def test_invalid_annotations_raise(envelope: dict[str, Any]) -> None:
    with pytest.raises(SuperJSONError):
        deserialize(envelope)


# ------------------------------------------------------------------------------------ registry
class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and other.cents == self.cents

    __hash__ = None  # type: ignore[assignment]


class Point:
    def __init__(self, x: int, at: datetime) -> None:
        self.x, self.at = x, at


def test_register_custom_and_class() -> None:
    codec = SuperJSON()
    codec.register(Money, "money", lambda m: str(m.cents), lambda s: Money(int(s)))
    codec.register(Point, "Point", lambda p: {"x": p.x, "at": p.at}, lambda d: Point(**d), kind="class")
    env = codec.serialize({"price": Money(250), "p": Point(1, D)})
    assert env["json"] == {"price": "250", "p": {"x": 1, "at": "2024-01-01T00:00:00.000Z"}}
    assert env["meta"]["values"] == {
        "price": [["custom", "money"]],
        "p": [["class", "Point"], {"at": ["Date"]}],
    }
    back = codec.deserialize(json.loads(json.dumps(env)))
    assert back["price"] == Money(250)
    assert isinstance(back["p"], Point) and back["p"].at == D
    with pytest.raises(SuperJSONError):
        superjson.serialize(Money(1))  # the default codec does not know it


# ------------------------------------------------------------------------------------ vectors
def _envelopes_in(value: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if "json" in value and set(value) <= {"json", "meta"}:
            found.append(value)
            return found
        for item in value.values():
            found += _envelopes_in(item)
    elif isinstance(value, list):
        for item in value:
            found += _envelopes_in(item)
    return found


def _json_texts(vec: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    for event in vec["wire"]:
        kind = event["kind"]
        if kind == "http-request":
            if event["url"].startswith("/plain"):
                return []
            query = parse_qs(urlsplit(event["url"]).query)
            texts += query.get("input", [])
            if event.get("body"):
                texts.append(event["body"])
        elif kind == "http-response-end":
            body = event["body"]
            texts += [line[5:].strip() for line in body.split("\n") if line.startswith("data:")]
            texts += [line for line in body.split("\n") if line.startswith(("{", "["))]
        elif kind == "ws-frame" and event["text"] not in ("PING", "PONG"):
            texts.append(event["text"])
    return texts


def _all_vector_envelopes() -> list[tuple[str, dict[str, Any]]]:
    seen: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in sorted(VECTORS.glob("*.json")):
        if path.name == "INDEX.json" or path.name.startswith("plain-"):
            continue
        for text in _json_texts(json.loads(path.read_text())):
            try:
                parsed = json.loads(text)
            except ValueError:
                continue
            for env in _envelopes_in(parsed):
                seen.setdefault(json.dumps(env, sort_keys=True), (path.stem, env))
    return list(seen.values())


VECTOR_ENVELOPES = _all_vector_envelopes()


def _describe(value: Any) -> Any:
    """Our decoded value in the harness' tagged form (``{"$date": ...}`` etc.)."""
    if value is UNDEFINED:
        return {"$undefined": True}
    if isinstance(value, datetime):
        return {"$date": format_date(value)}
    if isinstance(value, BigInt):
        return {"$bigint": str(int(value))}
    if isinstance(value, SuperMap):
        return {"$map": [[_describe(k), _describe(v)] for k, v in value.items()]}
    if isinstance(value, set | frozenset):
        return {"$set": [_describe(v) for v in value]}
    if isinstance(value, dict):
        return {k: _describe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_describe(v) for v in value]
    return value


def _strip_meta(env: dict[str, Any]) -> dict[str, Any]:
    meta = dict(env.get("meta") or {})
    return {"json": env.get("json"), "values": meta.get("values")}


def test_vectors_contain_many_envelopes() -> None:
    assert len(VECTOR_ENVELOPES) > 50
    assert any("map" in json.dumps(env.get("meta")) for _, env in VECTOR_ENVELOPES)


@pytest.mark.parametrize(("scenario", "envelope"), VECTOR_ENVELOPES, ids=[s for s, _ in VECTOR_ENVELOPES])
def test_vector_envelope_roundtrip(scenario: str, envelope: dict[str, Any], harness: ModuleType) -> None:
    decoded = deserialize(json.loads(json.dumps(envelope)))
    # same meaning as the harness' independent decoder
    assert _describe(decoded) == harness.sj_decode(envelope)
    # and re-encoding gives the reference's json + annotations back (the reference always
    # writes v:1 and may add referentialEqualities; neither changes the meaning)
    assert _strip_meta(serialize(decoded)) == _strip_meta(envelope)


def test_golden_superjson_types_echo() -> None:
    value = {
        "input": {
            "u": UNDEFINED,
            "d": D,
            "m": SuperMap({"k": 1}),
            "s": {1, 2},
            "b": BigInt(10),
            "nested": [{"d": D}, UNDEFINED],
        },
        "type": "object",
    }
    env = serialize(value)
    assert env["json"] == {
        "input": {
            "u": None,
            "d": "2024-01-01T00:00:00.000Z",
            "m": [["k", 1]],
            "s": [1, 2],
            "b": "10",
            "nested": [{"d": "2024-01-01T00:00:00.000Z"}, None],
        },
        "type": "object",
    }
    assert env["meta"]["values"] == {
        "input.u": ["undefined"],
        "input.d": ["Date"],
        "input.m": ["map"],
        "input.s": ["set"],
        "input.b": ["bigint"],
        "input.nested.0.d": ["Date"],
        "input.nested.1": ["undefined"],
    }


# ------------------------------------------------------------------------------------ speed
def test_event_stream_speed() -> None:
    """Tens of thousands of execution events per second must go through the codec."""
    events = [
        {
            "index": i,
            "type": "node:completed",
            "timestamp": D + timedelta(milliseconds=i),
            "data": {"nodeId": f"n{i}", "outputs": {"value": i, "text": "x" * 20}, "error": None},
        }
        for i in range(20_000)
    ]
    started = time.perf_counter()
    for ev in events:
        json.dumps(serialize(ev))
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"20k events took {elapsed:.2f}s"
    assert re.match(r"\d{4}-\d\d-\d\dT", serialize(events[0])["json"]["timestamp"])
