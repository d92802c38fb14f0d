"""Execution events: the envelope, the types and their payloads (upstream's §3.2).

Every event has a dense per-execution position ``seq``: ``execution:created`` is seq 0 and
index -1, and ``index = seq - 1`` for every event after it. The wire ``fromIndex`` of a
subscription is a ``seq``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID


class EventType(enum.StrEnum):
    EXECUTION_CREATED = "execution:created"
    FLOW_SUBSCRIBED = "flow:subscribed"
    FLOW_STARTED = "flow:started"
    FLOW_COMPLETED = "flow:completed"
    FLOW_FAILED = "flow:failed"
    FLOW_CANCELLED = "flow:cancelled"
    FLOW_PAUSED = "flow:paused"
    FLOW_RESUMED = "flow:resumed"
    NODE_STARTED = "node:started"
    NODE_COMPLETED = "node:completed"
    NODE_FAILED = "node:failed"
    NODE_SKIPPED = "node:skipped"
    NODE_STATUS_CHANGED = "node:status-changed"
    NODE_DEBUG_LOG_STRING = "node:debug-log-string"
    EDGE_TRANSFER_STARTED = "edge:transfer-started"
    EDGE_TRANSFER_COMPLETED = "edge:transfer-completed"
    EDGE_TRANSFER_FAILED = "edge:transfer-failed"
    CHILD_EXECUTION_SPAWNED = "child:spawned"
    CHILD_EXECUTION_COMPLETED = "child:completed"
    CHILD_EXECUTION_FAILED = "child:failed"
    DEBUG_BREAKPOINT_HIT = "debug:breakpoint-hit"


TERMINAL_EVENT_TYPES = frozenset({EventType.FLOW_COMPLETED, EventType.FLOW_FAILED, EventType.FLOW_CANCELLED})
TERMINAL_EVENT_VALUES = frozenset(t.value for t in TERMINAL_EVENT_TYPES)
ALL_EVENT_TYPES = frozenset(t.value for t in EventType)


class NodeStatus(enum.StrEnum):
    IDLE = "idle"
    INITIALIZED = "initialized"
    READY = "ready"
    PENDING = "pending"
    EXECUTING = "executing"
    COMPLETED = "completed"
    SKIPPED = "skipped"
    ERROR = "error"
    DISPOSED = "disposed"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An error inside an event payload; travels as a SuperJSON ``Error`` on the wire."""

    message: str
    name: str = "Error"

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "message": self.message}


@dataclass(slots=True)
class ExecutionEvent:
    """One event of an execution's stream. ``index`` is ``seq - 1``."""

    index: int
    type: str
    timestamp: datetime
    data: dict[str, Any]

    @property
    def seq(self) -> int:
        return self.index + 1

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_EVENT_VALUES

    def to_wire(self) -> dict[str, Any]:
        return {"index": self.index, "type": self.type, "timestamp": self.timestamp, "data": self.data}


def now() -> datetime:
    return datetime.now(UTC)


def event(index: int, type_: EventType | str, data: dict[str, Any]) -> ExecutionEvent:
    return ExecutionEvent(index, str(type_), now(), data)


def created_event(
    *,
    execution_id: str,
    flow_id: str,
    flow_metadata: dict[str, Any],
    owner_id: str,
    root_execution_id: str,
    parent_execution_id: str | None,
    execution_depth: int,
) -> ExecutionEvent:
    return event(
        -1,
        EventType.EXECUTION_CREATED,
        {
            "executionId": execution_id,
            "flowId": flow_id,
            "flowMetadata": flow_metadata,
            "ownerId": owner_id,
            "rootExecutionId": root_execution_id,
            "parentExecutionId": parent_execution_id,
            "executionDepth": execution_depth,
        },
    )


def to_json_safe(value: Any) -> Any:
    """Plain-JSON form of an event payload value (for storage and for clients without SuperJSON)."""
    if isinstance(value, ErrorInfo):
        return {"__error__": value.to_json()}
    if isinstance(value, datetime):
        return {"__date__": value.isoformat()}
    if isinstance(value, dict):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(v) for v in value]
    if isinstance(value, enum.Enum):
        return to_json_safe(value.value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, UUID):
        return str(value)
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json_safe(to_json())
    return repr(value)


def from_json_safe(value: Any) -> Any:
    """Inverse of :func:`to_json_safe`."""
    if isinstance(value, dict):
        if len(value) == 1:
            if "__error__" in value and isinstance(value["__error__"], dict):
                err = value["__error__"]
                return ErrorInfo(str(err.get("message", "")), str(err.get("name", "Error")))
            if "__date__" in value and isinstance(value["__date__"], str):
                return datetime.fromisoformat(value["__date__"])
        return {k: from_json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_safe(v) for v in value]
    return value
