"""One function per query/mutation: the procedure path, its input and how to read its output.

Shared by :class:`ExecutorClient` (one call, one request) and :class:`Batch` (many calls, one
request), so both speak exactly the same wire.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, TypeAdapter

from chaingraph_executor.client._models import (
    Execution,
    ExecutionTreeNode,
    FlowPage,
    FlowRecord,
    Identity,
    RootExecution,
    UploadedFlow,
)
from chaingraph_executor.trpc.superjson import UNDEFINED

T = TypeVar("T")
Kind = Literal["query", "mutation"]

#: a flow: its JSON document (a mapping) or the path of a ``.json`` file
FlowSource: TypeAlias = Mapping[str, Any] | str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    kind: Kind
    path: str
    input: Any
    parse: Callable[[Any], T]


def _none(_: Any) -> None:
    return None


def _identity(value: Any) -> Any:
    return value


def _list_of(model: type[Any]) -> Callable[[Any], Any]:
    return TypeAdapter(list[model]).validate_python  # type: ignore[valid-type]


def _compact(**fields: Any) -> dict[str, Any]:
    """Input object without the fields left at ``None`` (the server's defaults apply)."""
    return {k: v for k, v in fields.items() if v is not None}


def _options(options: Mapping[str, Any] | BaseModel | None) -> Any:
    if isinstance(options, BaseModel):
        return options.model_dump(mode="json", by_alias=True)
    return dict(options) if options is not None else None


def load_flow(flow: FlowSource) -> dict[str, Any]:
    """A flow document from a mapping (copied) or a JSON file."""
    if isinstance(flow, Mapping):
        copied: dict[str, Any] = json.loads(json.dumps(flow))
        return copied
    text = Path(flow).read_text(encoding="utf-8")
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError(f"{flow}: a flow document must be a JSON object")
    return document


def create(
    flow_id: str,
    *,
    options: Mapping[str, Any] | BaseModel | None = None,
    integration: Mapping[str, Any] | None = None,
    events: Sequence[Mapping[str, Any]] | None = None,
) -> Call[str]:
    return Call(
        "mutation",
        "create",
        _compact(
            flowId=flow_id,
            options=_options(options),
            integration=dict(integration) if integration is not None else None,
            events=[dict(e) for e in events] if events is not None else None,
        ),
        lambda out: str(out["executionId"]),
    )


def start(execution_id: str) -> Call[None]:
    return Call("mutation", "start", {"executionId": execution_id}, _none)


def stop(execution_id: str, reason: str | None = None) -> Call[None]:
    return Call("mutation", "stop", _compact(executionId=execution_id, reason=reason), _none)


def pause(execution_id: str, reason: str | None = None) -> Call[None]:
    return Call("mutation", "pause", _compact(executionId=execution_id, reason=reason), _none)


def resume(execution_id: str) -> Call[None]:
    return Call("mutation", "resume", {"executionId": execution_id}, _none)


def step(execution_id: str) -> Call[None]:
    return Call("mutation", "step", {"executionId": execution_id}, _none)


def set_breakpoints(execution_id: str, node_ids: Sequence[str]) -> Call[list[str]]:
    return Call(
        "mutation",
        "setBreakpoints",
        {"executionId": execution_id, "nodeIds": list(node_ids)},
        lambda out: [str(n) for n in out.get("nodeIds", [])],
    )


def get_execution_details(execution_id: str) -> Call[Execution]:
    return Call("query", "getExecutionDetails", {"executionId": execution_id}, Execution.model_validate)


def get_executions_tree(execution_id: str) -> Call[list[ExecutionTreeNode]]:
    return Call("query", "getExecutionsTree", {"executionId": execution_id}, _list_of(ExecutionTreeNode))


def get_root_executions(
    flow_id: str, *, limit: int | None = None, after: datetime | None = None, after_id: str | None = None
) -> Call[list[RootExecution]]:
    return Call(
        "query",
        "getRootExecutions",
        _compact(flowId=flow_id, limit=limit, after=after, afterId=after_id),
        _list_of(RootExecution),
    )


def upload_flow(flow: FlowSource) -> Call[UploadedFlow]:
    return Call("mutation", "uploadFlow", {"flow": load_flow(flow)}, UploadedFlow.model_validate)


def get_flow(flow_id: str, version: int | None = None) -> Call[FlowRecord]:
    return Call("query", "getFlow", _compact(flowId=flow_id, version=version), FlowRecord.model_validate)


def list_flows(*, limit: int | None = None, cursor: str | None = None) -> Call[FlowPage]:
    return Call("query", "listFlows", _compact(limit=limit, cursor=cursor), FlowPage.model_validate)


def delete_flow(flow_id: str) -> Call[None]:
    return Call("mutation", "deleteFlow", {"flowId": flow_id}, _none)


def whoami() -> Call[Identity]:
    return Call("query", "whoami", UNDEFINED, Identity.model_validate)


def raw(kind: Kind, path: str, input: Any = UNDEFINED) -> Call[Any]:
    return Call(kind, path, input, _identity)
