"""The Python client of chaingraph-executor: every procedure of a server, over its tRPC wire.

::

    from chaingraph_executor.client import ExecutorClient

    async with ExecutorClient("http://127.0.0.1:4021", token=None) as client:
        result = await client.run("examples/hello-world.json")
        print(result.status, result.outputs)

Queries go over ``GET``, mutations over ``POST`` (SuperJSON-encoded), :meth:`ExecutorClient.batch`
sends several calls in one request, and :meth:`ExecutorClient.subscribe_to_execution_events`
streams events over a WebSocket (or Server-Sent Events) and resumes after a dropped connection.
Errors are :class:`RemoteError` (with the tRPC ``code``) or :class:`TransportError`.
:class:`SyncExecutorClient` is the blocking twin for scripts. See ``docs/python-client.md``.
"""

from __future__ import annotations

from chaingraph_executor.client._client import (
    Batch,
    EventCallback,
    EventStream,
    ExecutorClient,
    Pending,
)
from chaingraph_executor.client._errors import ExecutorClientError, RemoteError, TransportError
from chaingraph_executor.client._flows import apply_inputs
from chaingraph_executor.client._models import (
    Event,
    Execution,
    ExecutionTreeNode,
    FlowPage,
    FlowRecord,
    FlowSummary,
    Identity,
    RootExecution,
    RunResult,
    UploadedFlow,
)
from chaingraph_executor.client._sync import SyncEventStream, SyncExecutorClient
from chaingraph_executor.client._wire import ReconnectPolicy
from chaingraph_executor.domain.events import ErrorInfo, EventType
from chaingraph_executor.domain.execution import ExecutionStatus

__all__ = [
    "Batch",
    "ErrorInfo",
    "Event",
    "EventCallback",
    "EventStream",
    "EventType",
    "Execution",
    "ExecutionStatus",
    "ExecutionTreeNode",
    "ExecutorClient",
    "ExecutorClientError",
    "FlowPage",
    "FlowRecord",
    "FlowSummary",
    "Identity",
    "Pending",
    "ReconnectPolicy",
    "RemoteError",
    "RootExecution",
    "RunResult",
    "SyncEventStream",
    "SyncExecutorClient",
    "TransportError",
    "UploadedFlow",
    "apply_inputs",
]
