"""Event nodes: emit an event (spawning a child execution) and listen for one.

A listener runs only in the child execution of its event, together with the nodes it feeds;
in a root run it and its chain are left out.
"""

from __future__ import annotations

from typing import Any

from chaingraph_executor.domain.flow import PortType
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.library._common import LibraryNode
from chaingraph_executor.engine.nodes import Input, Output


class EmitEvent(LibraryNode):
    type = "event.emit"
    title = "Emit event"
    category = "events"
    description = (
        "Emit the event `eventName` with `payload`; each emitted event runs the flow's listeners for "
        "it in a child execution. `eventId` identifies the emission."
    )
    eventName = Input(PortType.STRING, required=True)
    payload = Input(PortType.ANY)
    eventId = Output(PortType.STRING)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        name = self.read_string(ctx, "eventName").strip()
        if not name:
            raise self.fail("input 'eventName' is empty")
        emitted = ctx.emit_event(name, ctx.inputs.get("payload"))
        return {"eventId": emitted.id}


class EventListener(LibraryNode):
    type = "event.listener"
    title = "On event"
    category = "events"
    description = (
        "Starts a chain when the event `eventName` is emitted: runs only in the child execution of "
        "that event, publishing its `payload` and `name`."
    )
    auto_execute = False
    event_name_port = "eventName"
    eventName = Input(PortType.STRING, required=True, description="the event to listen for")
    payload = Output(PortType.ANY)
    name = Output(PortType.STRING, description="the name of the event received")

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        event = ctx.event
        if event is None:  # not run for an event: nothing to report
            return {"payload": None, "name": None}
        return {"payload": event.payload, "name": event.event_name}


EVENT_NODES: tuple[type[LibraryNode], ...] = (EmitEvent, EventListener)
