"""The stored form of event payloads: ``to_json_safe``/``from_json_safe`` done by C JSON code
(same text, same values, several times faster): the standard library's encoder writes, orjson
reads plain payloads (the standard decoder reads the rest), and the one-parameter batch document
of PostgreSQL appends."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from chaingraph_executor.backends.common import as_utc
from chaingraph_executor.domain.events import ErrorInfo, ExecutionEvent, to_json_safe


def _encode_default(value: Any) -> Any:
    return to_json_safe(value)


def _decode_object(obj: dict[str, Any]) -> Any:
    # the per-object half of from_json_safe, run by the C decoder on every JSON object
    if len(obj) == 1:
        if "__date__" in obj:
            stamp = obj["__date__"]
            if isinstance(stamp, str):
                return datetime.fromisoformat(stamp)
        elif "__error__" in obj:
            err = obj["__error__"]
            if isinstance(err, dict):
                return ErrorInfo(str(err.get("message", "")), str(err.get("name", "Error")))
    return obj


# check_circular=False: no id bookkeeping per container (a fifth of the encoding time). A payload
# that contains itself fails either way (RecursionError here, and in to_json_safe's fallback).
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_encode_default, check_circular=False
)
_DECODER = json.JSONDecoder(object_hook=_decode_object)
_PLAIN_DECODER = json.JSONDecoder()


# orjson hands datetimes and dataclasses (ErrorInfo) to to_json_safe like the standard encoder;
# the types it writes natively (enums, UUIDs) to_json_safe writes the same way.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _orjson_text(value: Any) -> str | None:
    """orjson's text of ``value`` (three to four times faster than the standard encoder), or None
    where only the standard encoder is exact: orjson writes NaN and infinities as ``null``, so a
    text with ``null`` in it is left to it, as are integers beyond 64 bits and non-string keys."""
    try:
        out = orjson.dumps(value, default=_encode_default, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError included
        return None
    return None if b"null" in out else out.decode()


def _encode_strict(data: dict[str, Any]) -> tuple[str, bool]:
    """``(text, strict)``: ``strict`` is False when the text is only Python's JSON (NaN, Infinity)."""
    fast = _orjson_text(data)
    if fast is not None:
        return fast, True
    try:
        return _ENCODER.encode(data), True
    except (TypeError, ValueError):  # NaN, or keys the C encoder refuses: take the slow, total path
        return json.dumps(to_json_safe(data), separators=(",", ":"), ensure_ascii=False), False


def encode_data(data: dict[str, Any]) -> str:
    """Event payload → stored JSON text: the JSON of ``to_json_safe(data)`` (the same values; the
    same text for string-keyed payloads up to the spelling of floats), produced by C encoders
    (``to_json_safe`` runs only for the values JSON cannot hold, such as datetimes and errors)."""
    return _encode_strict(data)[0]


def decode_data(text: str) -> dict[str, Any]:
    """Stored JSON text → event payload (``from_json_safe(json.loads(text))``, done by C decoders)."""
    # the object hook costs a Python call per JSON object: only pay it when a marker is present
    # (raw_decode: the text is our own compact JSON, no surrounding whitespace to skip)
    if '"__date__"' in text or '"__error__"' in text:
        value = _DECODER.raw_decode(text)[0]
    elif _LONG_DIGITS.search(text) is None:
        try:
            value = orjson.loads(text)  # about twice as fast as the standard decoder
        except orjson.JSONDecodeError:  # NaN or Infinity (Python's JSON, see _encode_strict)
            value = _PLAIN_DECODER.raw_decode(text)[0]
    else:  # orjson reads integers beyond 64 bits as floats: the standard decoder keeps them exact
        value = _PLAIN_DECODER.raw_decode(text)[0]
    return value if isinstance(value, dict) else {"value": value}


# 19 or more digits in a row: maybe an integer beyond 64 bits (floats are written with at most 17)
_LONG_DIGITS = re.compile(r"\d{19}")


_json_str = json.JSONEncoder(ensure_ascii=False).encode


def pg_batch(batch: Sequence[ExecutionEvent]) -> str:
    """A batch as one JSON array for PostgreSQL's ``json_to_recordset``: ``s`` seq, ``t`` type,
    ``ts`` timestamp, and the payload as JSON (``d``) or, when it is not strict JSON, as a JSON
    string of its text (``ds``). A ``json`` value keeps its text verbatim, so ``d::text`` is
    exactly ``encode_data(payload)``. One call of a C encoder for the whole batch (orjson, else the
    standard one); a batch with a payload both refuse (NaN, odd keys) is built event by event."""
    rows = [
        {"s": ev.index + 1, "t": ev.type, "ts": as_utc(ev.timestamp).isoformat(), "d": ev.data}
        for ev in batch
    ]
    fast = _orjson_text(rows)
    if fast is not None:
        return fast
    try:
        return _ENCODER.encode(rows)
    except (TypeError, ValueError):
        return _pg_batch_by_event(batch)


def pg_insert_batch(execution_id: str, batch: str, *, also_from: str = "") -> str:
    """The ``INSERT`` of a :func:`pg_batch` document's events into the event log. ``execution_id``
    and ``batch`` are SQL expressions (parameters, or a column of the ``also_from`` relation)."""
    return (
        "INSERT INTO chaingraph_events (execution_id, seq, type, ts, data)"
        f" SELECT {execution_id}, u.s, u.t, u.ts, COALESCE(u.ds, u.d::text)"
        f" FROM {also_from}json_to_recordset(CAST({batch} AS json))"
        " AS u(s integer, t text, ts timestamptz, d json, ds text)"
    )


def _pg_batch_by_event(batch: Sequence[ExecutionEvent]) -> str:
    parts = []
    for ev in batch:
        data, strict = _encode_strict(ev.data)
        body = f'"d":{data}' if strict else f'"ds":{_json_str(data)}'
        stamp = as_utc(ev.timestamp).isoformat()
        parts.append(f'{{"s":{ev.index + 1},"t":{_json_str(ev.type)},"ts":"{stamp}",{body}}}')
    return "[" + ",".join(parts) + "]"
