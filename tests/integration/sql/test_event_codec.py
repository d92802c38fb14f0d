"""The event payload codec of the SQL event log is ``to_json_safe``/``from_json_safe`` made fast:
the same stored text and the same values back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from chaingraph_executor.backends.sql.codec import decode_data, encode_data
from chaingraph_executor.domain.events import ErrorInfo, from_json_safe, to_json_safe

STAMP = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

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
    {"nan": float("nan")},
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_same_text_and_same_values_as_the_domain_codec(payload: dict[str, Any]) -> None:
    text = encode_data(payload)
    assert text == json.dumps(to_json_safe(payload), separators=(",", ":"), ensure_ascii=False)
    back = decode_data(text)
    expected = from_json_safe(json.loads(text))
    if "nan" in payload:
        assert back["nan"] != back["nan"] and expected["nan"] != expected["nan"]
    else:
        assert back == expected


def test_non_string_keys_fall_back_to_the_domain_codec() -> None:
    payload = {1: "one", (2, 3): "tuple key"}
    assert decode_data(encode_data(payload)) == {"1": "one", "(2, 3)": "tuple key"}
