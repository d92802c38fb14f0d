"""Executions: one run of a flow, its options, status and place in the tree of executions."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

MAX_EXECUTION_DEPTH = 100


class ExecutionStatus(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.STOPPED})

# Which status may follow which: everything else is refused by the stores' compare-and-set.
ALLOWED_TRANSITIONS: dict[ExecutionStatus, frozenset[ExecutionStatus]] = {
    ExecutionStatus.CREATED: frozenset(
        {ExecutionStatus.RUNNING, ExecutionStatus.FAILED, ExecutionStatus.STOPPED}
    ),
    ExecutionStatus.RUNNING: frozenset(
        {ExecutionStatus.PAUSED, ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.STOPPED}
    ),
    ExecutionStatus.PAUSED: frozenset(
        {ExecutionStatus.RUNNING, ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.STOPPED}
    ),
    ExecutionStatus.COMPLETED: frozenset(),
    ExecutionStatus.FAILED: frozenset(),
    ExecutionStatus.STOPPED: frozenset(),
}


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class EngineOptions(_Model):
    max_concurrency: Annotated[int, Field(ge=1, le=1000)] = 50
    node_timeout_ms: Annotated[int, Field(ge=1, le=7 * 24 * 3600 * 1000)] = 3_600_000
    flow_timeout_ms: Annotated[int, Field(ge=1, le=7 * 24 * 3600 * 1000)] = 10_800_000


class ExecutionOptions(_Model):
    """Upstream's ``ExecutionOptions``; unknown keys are refused so typos do not pass silently."""

    execution: EngineOptions = Field(default_factory=EngineOptions)
    debug: bool = False
    breakpoints: Annotated[list[str], Field(max_length=1000)] = Field(default_factory=list)


class ExternalEvent(_Model):
    event_name: Annotated[str, Field(min_length=1, max_length=200)]
    payload: Any = None


@dataclass(frozen=True, slots=True)
class EmittedEvent:
    """An event a node emitted during a run; each one spawns a child execution."""

    id: str
    name: str
    payload: Any
    emitted_by: str


@dataclass(slots=True)
class Execution:
    id: str
    flow_id: str
    owner_id: str
    status: ExecutionStatus
    created_at: datetime
    updated_at: datetime
    root_execution_id: str
    parent_execution_id: str | None = None
    execution_depth: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: str | None = None
    error_node_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    integration: dict[str, Any] = field(default_factory=dict)
    external_events: list[dict[str, Any]] = field(default_factory=list)
    flow_version: int = 1
    outputs: dict[str, Any] | None = None
    event_name: str | None = None

    @property
    def is_root(self) -> bool:
        return self.parent_execution_id is None

    def to_json(self) -> dict[str, Any]:
        """Upstream's row shape (camelCase), datetimes left as datetimes for the codec."""
        return {
            "id": self.id,
            "flowId": self.flow_id,
            "ownerId": self.owner_id,
            "rootExecutionId": self.root_execution_id,
            "parentExecutionId": self.parent_execution_id,
            "status": self.status.value,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "startedAt": self.started_at,
            "completedAt": self.completed_at,
            "errorMessage": self.error_message,
            "errorNodeId": self.error_node_id,
            "executionDepth": self.execution_depth,
            "options": self.options,
            "integration": self.integration,
            "externalEvents": self.external_events,
            "flowVersion": self.flow_version,
            "outputs": self.outputs,
        }


@dataclass(frozen=True, slots=True)
class ExecutionInfo:
    """What a running flow knows about the execution it belongs to."""

    execution_id: str
    flow_id: str
    owner_id: str | None = None
    root_execution_id: str | None = None
    parent_execution_id: str | None = None
    execution_depth: int = 0
    integration: dict[str, Any] = field(default_factory=dict)
    event: ExternalEvent | None = None
    attempt: int = 1

    @property
    def is_root(self) -> bool:
        return self.parent_execution_id is None
