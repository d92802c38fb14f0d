"""The debug log node: writes a line to the run's events (``node:debug-log-string``)."""

from __future__ import annotations

from typing import Any

from chaingraph_executor.domain.flow import PortType
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.library._common import LibraryNode, text_of
from chaingraph_executor.engine.nodes import Input, Output

LEVELS = ["debug", "info", "warn", "error"]


class DebugLog(LibraryNode):
    type = "debug.log"
    title = "Log"
    category = "debug"
    description = (
        "Log `[level] message: value` (either part may be empty; non-text values as JSON) and pass "
        "`value` on to `out`; `text` is the line logged."
    )
    message = Input(PortType.STRING, default="")
    value = Input(PortType.ANY)
    level = Input(PortType.ENUM, default="info", options=LEVELS)
    out = Output(PortType.ANY)
    text = Output(PortType.STRING)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        message = self.read_string(ctx, "message")
        level = self.read_string(ctx, "level")
        if level not in LEVELS:
            raise self.fail(f"unknown level '{level}' (use {', '.join(LEVELS)})")
        value = ctx.inputs.get("value")
        parts = [p for p in (message, text_of(value)) if p]
        line = f"[{level}] {': '.join(parts)}"
        ctx.log(line)
        return {"out": value, "text": line}


DEBUG_NODES: tuple[type[LibraryNode], ...] = (DebugLog,)
