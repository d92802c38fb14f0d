"""The flow document: nodes with typed ports joined by edges.

A flow is plain JSON (see ``schema/flow.schema.json``)::

    {"id": "...", "metadata": {"name": ..., "ownerID": ..., "version": 1, "tags": []},
     "nodes": [{"id": "a", "type": "math.add", "inputs": {"a": 1, "b": 2}}],
     "edges": [{"id": "e1", "sourceNodeId": "a", "sourcePortId": "result",
                "targetNodeId": "b", "targetPortId": "value"}]}

Port *types* come from the node type's declaration (``engine.nodes``); a flow node carries
port *values* (``inputs``) and, for node types that accept them, extra port declarations
(``ports``).
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from chaingraph_executor.errors import InvalidFlow


class PortType(enum.StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    ARRAY = "array"
    OBJECT = "object"
    ENUM = "enum"
    SECRET = "secret"
    STREAM = "stream"
    ANY = "any"


class Direction(enum.StrEnum):
    INPUT = "input"
    OUTPUT = "output"


# System ports every node has unless its type opts out.
EXECUTE_PORT = "__execute"
SUCCESS_PORT = "__success"
ERROR_PORT = "__error"
ERROR_MESSAGE_PORT = "__errorMessage"
SYSTEM_PORTS = frozenset({EXECUTE_PORT, SUCCESS_PORT, ERROR_PORT, ERROR_MESSAGE_PORT})
ERROR_PORTS = frozenset({ERROR_PORT, ERROR_MESSAGE_PORT})


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class PortSpec(_Model):
    """A typed port. ``items`` describes array elements, ``fields`` the keys of an object."""

    id: Annotated[str, Field(min_length=1, max_length=200)]
    type: PortType = PortType.ANY
    direction: Direction = Direction.INPUT
    title: str | None = None
    description: str | None = None
    required: bool = False
    default: Any = None
    options: list[str] | None = None
    items: PortSpec | None = None
    fields: list[PortSpec] | None = None

    @model_validator(mode="after")
    def _check_shape(self) -> PortSpec:
        if self.type is PortType.ENUM and not self.options:
            raise ValueError(f"enum port '{self.id}' needs a non-empty 'options' list")
        if self.items is not None and self.type is not PortType.ARRAY:
            raise ValueError(f"port '{self.id}': 'items' is only allowed on array ports")
        if self.fields is not None and self.type is not PortType.OBJECT:
            raise ValueError(f"port '{self.id}': 'fields' is only allowed on object ports")
        return self


class FlowMetadata(_Model):
    name: str = ""
    description: str = ""
    owner_id: Annotated[str | None, Field(alias="ownerID")] = None
    version: Annotated[int, Field(ge=1)] = 1
    tags: list[str] = Field(default_factory=list)


class FlowNode(_Model):
    id: Annotated[str, Field(min_length=1, max_length=200)]
    type: Annotated[str, Field(min_length=1, max_length=200)]
    title: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    ports: list[PortSpec] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Edge(_Model):
    id: Annotated[str, Field(min_length=1, max_length=200)]
    source_node_id: str
    source_port_id: str
    target_node_id: str
    target_port_id: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class Flow(_Model):
    schema_: Annotated[Literal["chaingraph-flow/v1"] | None, Field(alias="$schema")] = None
    id: Annotated[str, Field(min_length=1, max_length=200)]
    metadata: FlowMetadata = Field(default_factory=FlowMetadata)
    nodes: list[FlowNode] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)

    def node(self, node_id: str) -> FlowNode | None:
        for node in self.nodes:
            if node.id == node_id:
                return node
        return None

    def with_owner(self, owner_id: str, version: int | None = None) -> Flow:
        meta = self.metadata.model_copy(
            update={"owner_id": owner_id, **({"version": version} if version is not None else {})}
        )
        return self.model_copy(update={"metadata": meta})

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_flow(document: Any) -> Flow:
    """Parse a flow document; raises ``InvalidFlow`` naming each problem."""
    try:
        return Flow.model_validate(document)
    except ValidationError as exc:
        raise InvalidFlow([_describe(err, document) for err in exc.errors()]) from None


def _describe(err: Any, document: Any) -> str:
    loc = list(err.get("loc", ()))
    where = _location(loc, document)
    msg = str(err.get("msg", "invalid"))
    return f"{where}: {msg}" if where else msg


def _location(loc: list[Any], document: Any) -> str:
    """Name nodes and edges by their id rather than their position in the list."""
    parts: list[str] = []
    cur = document
    i = 0
    while i < len(loc):
        key = loc[i]
        if key in ("nodes", "edges") and i + 1 < len(loc) and isinstance(loc[i + 1], int):
            idx = loc[i + 1]
            items = cur.get(key) if isinstance(cur, dict) else None
            item = items[idx] if isinstance(items, list) and 0 <= idx < len(items) else None
            ident = item.get("id") if isinstance(item, dict) else None
            label = "node" if key == "nodes" else "edge"
            parts.append(f"{label} '{ident}'" if ident else f"{label} #{idx}")
            cur = item
            i += 2
            continue
        parts.append(str(key))
        cur = cur.get(key) if isinstance(cur, dict) else None
        i += 1
    return " ".join(parts[:1]) + ("." + ".".join(parts[1:]) if len(parts) > 1 else "") if parts else ""


def flow_json_schema() -> dict[str, Any]:
    """The JSON Schema of the flow document (committed as ``schema/flow.schema.json``)."""
    schema = Flow.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://chaingraph-executor/schema/flow.schema.json",
        "title": "chaingraph-executor flow",
        **{k: v for k, v in schema.items() if k != "title"},
    }
