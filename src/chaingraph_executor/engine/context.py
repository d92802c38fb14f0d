"""What a node sees while it runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chaingraph_executor.domain.execution import EmittedEvent, ExecutionInfo, ExternalEvent
from chaingraph_executor.engine.streams import StreamChannel

if TYPE_CHECKING:
    from chaingraph_executor.engine.runner import FlowEngine, NodeState


class NodeContext:
    """The execution context of one node run.

    ``inputs`` holds the input port values (edges, flow values, defaults). Output values are
    returned by ``execute`` or set with :meth:`set_output`; :meth:`resolve_port` publishes an
    output before the node finishes (streaming), :meth:`open_stream` does both for a stream.
    """

    __slots__ = ("_engine", "_state", "inputs", "outputs")

    def __init__(self, engine: FlowEngine, state: NodeState, inputs: dict[str, Any]) -> None:
        self._engine = engine
        self._state = state
        self.inputs = inputs
        self.outputs: dict[str, Any] = {}

    # -- identity -------------------------------------------------------------------------
    @property
    def node_id(self) -> str:
        return self._state.compiled.id

    @property
    def info(self) -> ExecutionInfo:
        return self._engine.info

    @property
    def execution_id(self) -> str:
        return self._engine.info.execution_id

    @property
    def flow_id(self) -> str:
        return self._engine.info.flow_id

    @property
    def root_execution_id(self) -> str:
        return self._engine.info.root_execution_id or self._engine.info.execution_id

    @property
    def parent_execution_id(self) -> str | None:
        return self._engine.info.parent_execution_id

    @property
    def is_root(self) -> bool:
        return self._engine.info.is_root

    @property
    def depth(self) -> int:
        return self._engine.info.execution_depth

    @property
    def integration(self) -> Mapping[str, Any]:
        return self._engine.info.integration

    @property
    def event(self) -> ExternalEvent | None:
        """The event this (child) execution runs for, if any."""
        return self._engine.info.event

    @property
    def services(self) -> Mapping[str, Any]:
        """Shared helpers the host provides to nodes (e.g. an HTTP client)."""
        return self._engine.services

    # -- effects --------------------------------------------------------------------------
    def log(self, message: str) -> None:
        """Publish a ``node:debug-log-string`` event."""
        self._engine.log(self._state, str(message))

    def emit_event(self, name: str, payload: Any = None) -> EmittedEvent:
        """Emit an event; the execution layer spawns a child execution for it."""
        return self._engine.emit_event(self._state, name, payload)

    def set_output(self, port: str, value: Any) -> None:
        self._engine.check_output_port(self._state, port)
        self.outputs[port] = value

    def resolve_port(self, port: str) -> None:
        """Publish an output port now, so that its consumers may start before this node ends."""
        self._engine.resolve_early(self._state, port, self.outputs.get(port))

    def withhold(self, port: str) -> None:
        """Do not publish ``port`` when this node completes: nodes fed by it will not run.
        (Used by flow control: a branch publishes only the path it takes.)"""
        self._engine.withhold(self._state, port)

    def open_stream(self, port: str) -> StreamChannel:
        """Create a stream on an output port and publish it at once; it closes when the node ends."""
        channel = StreamChannel()
        self.set_output(port, channel)
        self.resolve_port(port)
        return channel
