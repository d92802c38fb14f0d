"""Flow control nodes: branch, gate, switch, merge, sleep, deliberate failure, run introspection.

Branch, gate and switch publish only the path taken (``ctx.withhold`` on the others): nodes fed
by a withheld port do not run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from chaingraph_executor.domain.flow import Direction, PortType
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.library._common import LibraryNode, text_of
from chaingraph_executor.engine.nodes import Input, Output


class Branch(LibraryNode):
    type = "flow.branch"
    title = "Branch"
    category = "flow"
    description = (
        "Publish `value` on `then` when `condition` is true, on `else` otherwise; the other port is "
        "not published, so what it feeds does not run. `result` carries the condition."
    )
    condition = Input(PortType.BOOLEAN, default=False)
    value = Input(PortType.ANY)
    then = Output(PortType.ANY)
    otherwise = Output(PortType.ANY, id="else")
    result = Output(PortType.BOOLEAN)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        condition = self.read_boolean(ctx, "condition")
        taken, other = ("then", "else") if condition else ("else", "then")
        ctx.withhold(other)
        return {taken: ctx.inputs.get("value"), "result": condition}


class Gate(LibraryNode):
    type = "flow.gate"
    title = "Gate"
    category = "flow"
    description = "Publish `value` on `out` only when `open` is true (closed by default)."
    value = Input(PortType.ANY)
    open = Input(PortType.BOOLEAN, default=False)
    out = Output(PortType.ANY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        if self.read_boolean(ctx, "open"):
            return {"out": ctx.inputs.get("value")}
        ctx.withhold("out")
        return {}


class Switch(LibraryNode):
    type = "flow.switch"
    title = "Switch"
    category = "flow"
    description = (
        "The cases are the extra output ports declared on the node: the one whose id equals the "
        "value as text (true/false for booleans, 2 for 2.0) receives `value`; `default` does when "
        "none matches. `matched` names the port taken."
    )
    dynamic_ports = True
    dynamic_direction = Direction.OUTPUT
    value = Input(PortType.ANY)
    default = Output(PortType.ANY)
    matched = Output(PortType.STRING)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        value = ctx.inputs.get("value")
        cases = [spec.id for spec in self.flow_node.ports]
        wanted = {text_of(value), str(value)}
        taken = next((case for case in cases if case in wanted), "default")
        for port in [*cases, "default"]:
            if port != taken:
                ctx.withhold(port)
        return {taken: value, "matched": taken}


class Merge(LibraryNode):
    type = "flow.merge"
    title = "Merge"
    category = "flow"
    description = (
        "The first of a, b, c that has a value (null when none has); `source` names it. After a "
        "branch, connect both paths to the same port (`a`): the first published edge wins, while "
        "separate ports would each wait for a path that never comes."
    )
    a = Input(PortType.ANY)
    b = Input(PortType.ANY)
    c = Input(PortType.ANY)
    value = Output(PortType.ANY)
    source = Output(PortType.STRING)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        for port in ("a", "b", "c"):
            if ctx.inputs.get(port) is not None:
                return {"value": ctx.inputs[port], "source": port}
        return {"value": None, "source": ""}


class Sleep(LibraryNode):
    type = "flow.sleep"
    title = "Sleep"
    category = "flow"
    description = "Wait `ms` milliseconds, then pass `value` on to `out`. Stopping the run cancels the wait."
    ms = Input(PortType.NUMBER, default=1000)
    value = Input(PortType.ANY)
    out = Output(PortType.ANY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        ms = self.read_number(ctx, "ms")
        if ms < 0:
            raise self.fail(f"ms must not be negative, got {ms}")
        await asyncio.sleep(ms / 1000)
        return {"out": ctx.inputs.get("value")}


class Fail(LibraryNode):
    type = "flow.fail"
    title = "Fail"
    category = "flow"
    description = (
        "Fail with `message` (to try error handling: connect `__errorMessage`). `value` lets it "
        "run after another node; `out` is never published."
    )
    message = Input(PortType.STRING, default="failed on purpose")
    value = Input(PortType.ANY)
    out = Output(PortType.ANY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        message = ctx.inputs.get("message")
        raise RuntimeError(text_of(message) or "failed on purpose")


class IsRoot(LibraryNode):
    type = "flow.is-root"
    title = "Is root execution"
    category = "flow"
    description = "Whether this run is a root execution (not spawned by an event), and its depth."
    isRoot = Output(PortType.BOOLEAN)
    depth = Output(PortType.NUMBER)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"isRoot": ctx.is_root, "depth": ctx.depth}


FLOW_NODES: tuple[type[LibraryNode], ...] = (Branch, Gate, Switch, Merge, Sleep, Fail, IsRoot)
