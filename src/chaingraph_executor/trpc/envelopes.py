"""Response envelopes, the error shape, the HTTP status rule and WebSocket message parsing.

* ``{"result": {"data": ...}}`` / ``{"error": shape}`` (PROTOCOL.md §1.1);
* the default error shape ``{message, code, data: {code, httpStatus, path?, stack?, ...extras}}``
  (§1.2), ``stack`` only in dev mode;
* the batch status rule: one status if all calls agree, else 207 (§2.3);
* client → server WebSocket frames: requests, ``subscription.stop``, ``connectionParams``
  (§4.1, §4.2), validated like ``parseTRPCMessage`` (invalid → PARSE_ERROR, id null);
* ``lastEventId`` merging into a subscription's input (§3.1, §4.4);
* connection params (a JSON object of string values, or null).
"""

from __future__ import annotations

import json
import math
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from chaingraph_executor.trpc.codes import TRPCError
from chaingraph_executor.trpc.superjson import UNDEFINED
from chaingraph_executor.trpc.transformers import Transformer

__all__ = [
    "PROCEDURE_TYPES",
    "ErrorFormatter",
    "ProcedureType",
    "WSConnectionParams",
    "WSParseError",
    "WSRequest",
    "WSStop",
    "batch_status",
    "error_envelope",
    "error_shape",
    "is_request_id",
    "merge_last_event_id",
    "parse_connection_params",
    "parse_connection_params_json",
    "parse_ws_connection_params",
    "parse_ws_message",
    "result_envelope",
]

ProcedureType = Literal["query", "mutation", "subscription"]
PROCEDURE_TYPES: Final[tuple[ProcedureType, ...]] = ("query", "mutation", "subscription")

#: ``(shape, error) -> shape``: the app's last word on an error shape (``errorFormatter``)
ErrorFormatter = Callable[[dict[str, Any], TRPCError], dict[str, Any]]


def error_shape(
    error: TRPCError,
    *,
    path: str | None = None,
    dev: bool = False,
    formatter: ErrorFormatter | None = None,
) -> dict[str, Any]:
    """The default tRPC error shape (untransformed)."""
    data: dict[str, Any] = {"code": error.code, "httpStatus": error.http_status}
    if dev:
        data["stack"] = _stack(error)
    if path is not None:
        data["path"] = path
    if error.data_extra:
        data.update(error.data_extra)
    shape: dict[str, Any] = {"message": error.message, "code": error.jsonrpc_code, "data": data}
    if formatter is not None:
        shape = formatter(shape, error)
    return shape


def _stack(error: TRPCError) -> str:
    origin: BaseException = error.__cause__ if error.__cause__ is not None else error
    lines = traceback.format_exception(origin)
    return "".join(lines).rstrip("\n")


def result_envelope(data: Any, transformer: Transformer) -> dict[str, Any]:
    """``{"result": {"data": serialize(data)}}``; ``data`` is left out when it is undefined."""
    encoded = transformer.serialize(data)
    if encoded is UNDEFINED:
        return {"result": {}}
    return {"result": {"data": encoded}}


def error_envelope(shape: dict[str, Any], transformer: Transformer) -> dict[str, Any]:
    return {"error": transformer.serialize(shape)}


def batch_status(statuses: Iterable[int]) -> int:
    """HTTP status of a (batch) response: the common status of every call, else 207."""
    distinct = set(statuses)
    if len(distinct) == 1:
        return distinct.pop()
    return 207


def merge_last_event_id(value: Any, last_event_id: str | None) -> Any:
    """Object input → ``{...input, lastEventId}``; undefined/null → ``{lastEventId}``; else unchanged."""
    if last_event_id is None:
        return value
    if isinstance(value, dict):
        return {**value, "lastEventId": last_event_id}
    if value is None or value is UNDEFINED:
        return {"lastEventId": last_event_id}
    return value


def parse_connection_params(value: Any) -> dict[str, str] | None:
    """Connection params must be ``null`` or an object of strings (else PARSE_ERROR)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TRPCError("PARSE_ERROR", "Invalid connection params shape")
    bad = [f"{k}: {_js_typeof(v)}" for k, v in value.items() if not isinstance(v, str)]
    if bad:
        raise TRPCError(
            "PARSE_ERROR",
            "Invalid connection params shape",
            cause=ValueError(f"Expected connectionParams to be string values. Got {', '.join(bad)}"),
        )
    return dict(value)


def parse_connection_params_json(text: str) -> dict[str, str] | None:
    """The ``?connectionParams=`` query parameter of an HTTP/SSE request."""
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise TRPCError("PARSE_ERROR", "Not JSON-parsable query params", cause=exc) from exc
    return parse_connection_params(parsed)


def _js_typeof(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


# ---------------------------------------------------------------------------------- WebSocket
@dataclass(frozen=True, slots=True)
class WSRequest:
    id: int | float | str
    method: ProcedureType
    path: str
    input: Any  # decoded (transformer applied), UNDEFINED when absent
    last_event_id: str | None = None
    jsonrpc: str | None = None


@dataclass(frozen=True, slots=True)
class WSStop:
    id: int | float | str
    jsonrpc: str | None = None


@dataclass(frozen=True, slots=True)
class WSConnectionParams:
    data: dict[str, str] | None


def is_request_id(value: Any) -> bool:
    """A request id is a string or a number that is not NaN (``null`` is handled separately)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str | int):
        return True
    return isinstance(value, float) and not math.isnan(value)


class WSParseError(ValueError):
    """A frame is not a valid tRPC message (answered with id:null PARSE_ERROR)."""


def parse_ws_message(obj: Any, transformer: Transformer) -> WSRequest | WSStop:
    """Validate one client message (``parseTRPCMessage``).

    Raises :class:`WSParseError`. A message with ``id: null`` is valid here: the connection
    answers it with PARSE_ERROR "`id` is required" after the whole frame was accepted.
    """
    if not isinstance(obj, Mapping):
        raise WSParseError("Not an object")
    msg_id = obj.get("id", UNDEFINED)
    if msg_id is not None and not is_request_id(msg_id):
        raise WSParseError("Invalid request id")
    jsonrpc = obj.get("jsonrpc")
    if jsonrpc is not None and jsonrpc != "2.0":
        raise WSParseError("Must be JSONRPC 2.0")
    method = obj.get("method")
    if method == "subscription.stop":
        return WSStop(id=msg_id, jsonrpc=jsonrpc)
    if method not in PROCEDURE_TYPES:
        raise WSParseError("Invalid procedure type")
    params = obj.get("params")
    if not isinstance(params, Mapping):
        raise WSParseError("Not an object")
    path = params.get("path")
    if not isinstance(path, str):
        raise WSParseError("Invalid string")
    last_event_id = params.get("lastEventId")
    if last_event_id is not None and not isinstance(last_event_id, str):
        raise WSParseError("Invalid string")
    raw_input = params.get("input", UNDEFINED)
    try:
        value = UNDEFINED if raw_input is UNDEFINED else transformer.deserialize(raw_input)
    except ValueError as exc:
        raise WSParseError(str(exc)) from exc
    return WSRequest(
        id=msg_id,
        method=method,
        path=path,
        input=value,
        last_event_id=last_event_id,
        jsonrpc=jsonrpc,
    )


def parse_ws_connection_params(obj: Any) -> WSConnectionParams:
    """The first frame after ``?connectionParams=1``: ``{"method":"connectionParams","data":...}``."""
    if not isinstance(obj, Mapping):
        raise TRPCError("PARSE_ERROR", "Malformed TRPCConnectionParamsMessage")
    data = obj.get("data", UNDEFINED)
    if data is UNDEFINED:
        raise TRPCError("PARSE_ERROR", "Invalid connection params shape")
    return WSConnectionParams(parse_connection_params(data))
