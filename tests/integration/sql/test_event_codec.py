"""The event payload codec of the SQL event log is ``to_json_safe``/``from_json_safe`` made fast:
the same stored JSON (up to the spelling of floats) and the same values back."""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from chaingraph_executor.backends.sql import SqlBackend
from chaingraph_executor.backends.sql.codec import decode_data, encode_data
from chaingraph_executor.backends.sql.tables import events
from chaingraph_executor.domain.events import ErrorInfo, event, from_json_safe, to_json_safe

STAMP = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


PAYLOADS: list[dict[str, Any]] = [
    {},
    {"a": 1, "b": [1, 2.5, "x", None, True], "c": {"d": {"e": []}}},
    {
        "at": STAMP,
        "local": STAMP.astimezone(timezone(timedelta(hours=3))),
        "err": ErrorInfo("boom", "TypeError"),
    },
    {"nested": [{"at": STAMP}, [{"error": ErrorInfo("x")}]], "tuple": (1, (2, 3))},
    {"unicode": 'héllo ☃ \u2028 "q" \\ \n', "big": 2**70, "neg": -0.0},
    {"object": object.__new__(type("Opaque", (), {"__repr__": lambda self: "<opaque>"}))},
    {"__date__": "looks like a marker but has a sibling", "x": 1},
    {"ints": [2**53 + 1, -(2**63), 2**63 - 1, 10**18 - 1], "digits": "12345678901234567890123"},
    {"floats": [0.1, 1e-7, 1.2345678901234567e29, -0.0, 5e-324], "plain": True},
    {"none": None, "inf": [1.5, 2.5], "nested": {"n": None}},
    {"enum": Color.RED, "uuid": UUID("12345678-1234-5678-1234-567812345678"), "int_enum": Level.HIGH},
    {"nan": float("nan")},
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_same_json_and_same_values_as_the_domain_codec(payload: dict[str, Any]) -> None:
    text = encode_data(payload)
    reference = json.dumps(to_json_safe(payload), separators=(",", ":"), ensure_ascii=False)
    if "nan" not in payload:
        assert json.loads(text) == json.loads(reference)
    else:
        assert text == reference  # NaN is kept (Python's JSON), never turned into null
    back = decode_data(text)
    expected = from_json_safe(json.loads(text))
    if "nan" in payload:
        assert back["nan"] != back["nan"] and expected["nan"] != expected["nan"]
    else:
        assert back == expected


def test_non_string_keys_fall_back_to_the_domain_codec() -> None:
    payload = {1: "one", (2, 3): "tuple key"}
    assert decode_data(encode_data(payload)) == {"1": "one", "(2, 3)": "tuple key"}


@pytest.mark.asyncio
@pytest.mark.parametrize("mixed", [False, True], ids=["strict-batch", "batch-with-nan"])
async def test_an_appended_batch_stores_each_payload_as_encode_data_does(sql_url: str, mixed: bool) -> None:
    """A whole batch is encoded at once on PostgreSQL; one payload the C encoder refuses (NaN)
    makes the batch fall back to event-by-event encoding. Either way each stored text is exactly
    ``encode_data`` of its payload, and reads give the payloads back."""
    payloads = [p for p in PAYLOADS if "nan" not in p and not any(isinstance(k, tuple) for k in p)]
    if mixed:
        payloads.insert(1, {"nan": float("nan")})
    async with SqlBackend(sql_url) as backend:
        eid = "codec-mixed" if mixed else "codec-strict"
        await backend.events.append(eid, [event(i, "node:completed", p) for i, p in enumerate(payloads)])
        async with backend.db.connect() as conn:
            query = select(events.c.data).where(events.c.execution_id == eid).order_by(events.c.seq)
            stored = (await conn.execute(query)).scalars().all()
        assert len(stored) == len(payloads)
        for text, payload in zip(stored, payloads, strict=True):
            if "nan" in payload:
                assert text == encode_data(payload) == '{"nan":NaN}'
            else:
                assert json.loads(text) == json.loads(encode_data(payload))
        read = await backend.events.read(eid, 0, limit=100)
        assert [e.data for e in read if "nan" not in e.data] == [
            decode_data(encode_data(p)) for p in payloads if "nan" not in p
        ]
