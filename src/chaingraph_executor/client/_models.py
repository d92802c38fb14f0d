"""What the procedures return, as typed models, and the execution events."""

from __future__ import annotations

import base64
import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from chaingraph_executor.domain.events import TERMINAL_EVENT_VALUES, ErrorInfo
from chaingraph_executor.domain.execution import ExecutionStatus
from chaingraph_executor.trpc.superjson import Undefined, format_date

__all__ = [
    "Event",
    "Execution",
    "ExecutionTreeNode",
    "FlowPage",
    "FlowRecord",
    "FlowSummary",
    "Identity",
    "RootExecution",
    "RunResult",
    "UploadedFlow",
    "to_plain_json",
]


class _Row(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields from newer servers are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class Execution(_Row):
    """One execution (``getExecutionDetails``; also inside trees and root listings)."""

    id: str
    flow_id: str
    owner_id: str
    root_execution_id: str
    parent_execution_id: str | None = None
    status: ExecutionStatus
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: str | None = None
    error_node_id: str | None = None
    execution_depth: int = 0
    options: dict[str, Any] = Field(default_factory=dict)
    integration: dict[str, Any] = Field(default_factory=dict)
    external_events: list[dict[str, Any]] = Field(default_factory=list)
    flow_version: int = 1
    #: ``{node id: {port: value}}`` of the flow's last nodes, once it completed
    outputs: dict[str, Any] | None = None

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @property
    def duration_ms(self) -> float | None:
        """Time from start to completion (to now while it runs); ``None`` before it started."""
        if self.started_at is None:
            return None
        end = self.completed_at or datetime.now(self.started_at.tzinfo)
        return (end - self.started_at).total_seconds() * 1000


class ExecutionTreeNode(_Row):
    """One execution in a tree (``getExecutionsTree``): the root has level 0 and no parent."""

    id: str
    parent_id: str | None = None
    level: int
    execution: Execution


class RootExecution(_Row):
    """A root execution with the depth and size of its tree (``getRootExecutions``)."""

    execution: Execution
    levels: int
    total_nested: int


class FlowSummary(_Row):
    """A stored flow version (``listFlows`` items)."""

    flow_id: str
    version: int
    name: str = ""
    owner_id: str
    tags: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    nodes: int


class FlowRecord(FlowSummary):
    """A stored flow version with its document (``getFlow``)."""

    flow: dict[str, Any]


class FlowPage(_Row):
    """One page of ``listFlows``; pass ``next_cursor`` back to get the next (``None``: last page)."""

    items: list[FlowSummary]
    next_cursor: str | None = None


class UploadedFlow(_Row):
    """What ``uploadFlow`` stored: the flow id and its new version (1, 2, ... per upload)."""

    flow_id: str
    version: int


class Identity(_Row):
    """Who the server thinks you are (``whoami``); ``dev_mode``: every caller is an admin."""

    user_id: str
    is_admin: bool
    dev_mode: bool


@dataclass(frozen=True, slots=True)
class Event:
    """One event of an execution's stream.

    ``index`` is the event's position (``execution:created`` is -1, the next event 0, ...);
    ``seq = index + 1`` is what ``from_index`` and resuming count in. ``data`` is the payload
    as sent (dates are ``datetime``, errors :class:`ErrorInfo`); the properties below read the
    common fields of the payloads.
    """

    index: int
    type: str
    timestamp: datetime
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, value: Mapping[str, Any]) -> Event:
        timestamp = value.get("timestamp")
        if not isinstance(timestamp, datetime):
            timestamp = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
        data = value.get("data")
        return cls(
            index=int(value["index"]),
            type=str(value["type"]),
            timestamp=timestamp,
            data=dict(data) if isinstance(data, Mapping) else {},
        )

    @property
    def seq(self) -> int:
        return self.index + 1

    @property
    def terminal(self) -> bool:
        """``flow:completed``, ``flow:failed`` or ``flow:cancelled``: the last event of a run."""
        return self.type in TERMINAL_EVENT_VALUES

    @property
    def node_id(self) -> str | None:
        """The node a ``node:*`` / ``debug:*`` event is about (the target node of an ``edge:*``)."""
        d = self.data
        node = d.get("node")
        if isinstance(node, Mapping) and node.get("id") is not None:
            return str(node["id"])
        if d.get("nodeId") is not None:
            return str(d["nodeId"])
        edge = d.get("serializedEdge")
        if isinstance(edge, Mapping) and edge.get("targetNodeId") is not None:
            return str(edge["targetNodeId"])
        return None

    @property
    def error(self) -> str | None:
        """The error message of ``node:failed`` / ``flow:failed`` / ``edge:transfer-failed``."""
        err = self.data.get("error")
        if err is None:
            return None
        if isinstance(err, ErrorInfo):
            return err.message
        if isinstance(err, Mapping):
            return str(err.get("message", err))
        return str(err)

    @property
    def log(self) -> str | None:
        """The text of a ``node:debug-log-string`` event."""
        text = self.data.get("log")
        return None if text is None else str(text)

    @property
    def outputs(self) -> dict[str, Any] | None:
        """The outputs of a ``node:completed`` event."""
        out = self.data.get("outputs")
        return dict(out) if isinstance(out, Mapping) else None

    @property
    def execution_time_ms(self) -> float | None:
        """How long the node (``node:completed``/``failed``) or the flow (terminal events) took."""
        value = self.data.get("executionTime")
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    @property
    def reason(self) -> str | None:
        """Why a flow was paused/resumed/cancelled or a node skipped."""
        value = self.data.get("reason")
        return None if value is None else str(value)

    def to_json(self) -> dict[str, Any]:
        """The event as plain JSON (ISO dates, errors as ``{"name", "message"}``)."""
        return {
            "index": self.index,
            "type": self.type,
            "timestamp": format_date(self.timestamp),
            "data": to_plain_json(self.data),
        }


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of :meth:`ExecutorClient.run`."""

    status: ExecutionStatus
    #: ``{node id: {port: value}}`` of the flow's last nodes (empty unless completed)
    outputs: dict[str, Any]
    execution_id: str
    #: why it failed or stopped
    error: str | None = None
    error_node_id: str | None = None
    #: every event of the run, in order
    events: list[Event] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is ExecutionStatus.COMPLETED


def to_plain_json(value: Any) -> Any:
    """A decoded value as plain JSON: dates as ISO strings, errors as ``{"name", "message"}``,
    sets as lists, bytes as base64, undefined as null, anything else unknown as its ``str``."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, Mapping):
        return {str(k): to_plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_plain_json(v) for v in value]
    if isinstance(value, datetime):
        return format_date(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, ErrorInfo):
        return value.to_json()
    if isinstance(value, BaseException):
        return {"name": type(value).__name__, "message": str(value)}
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, enum.Enum):
        return to_plain_json(value.value)
    if isinstance(value, Undefined):
        return None
    if isinstance(value, BaseModel):
        return to_plain_json(value.model_dump(mode="json", by_alias=True))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain_json(dataclasses.asdict(value))
    return str(value)
