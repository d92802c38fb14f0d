"""JSON nodes: parse text into a value, write a value as text."""

from __future__ import annotations

import json
from typing import Any, NoReturn

from chaingraph_executor.domain.flow import PortType
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.library._common import LibraryNode
from chaingraph_executor.engine.nodes import Input, Output


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


class Parse(LibraryNode):
    type = "json.parse"
    title = "Parse JSON"
    category = "json"
    description = (
        "Parse JSON text; invalid text fails the node with the line, column and position of the error."
    )
    text = Input(PortType.STRING, default="")
    value = Output(PortType.ANY)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        text = self.read_string(ctx, "text")
        try:
            return {"value": json.loads(text, parse_constant=_no_constants)}
        except json.JSONDecodeError as exc:
            raise self.fail(
                f"invalid JSON at line {exc.lineno}, column {exc.colno} (position {exc.pos}): {exc.msg}"
            ) from None
        except ValueError as exc:  # NaN, Infinity
            raise self.fail(f"invalid JSON: {exc}") from None


class Stringify(LibraryNode):
    type = "json.stringify"
    title = "Write JSON"
    category = "json"
    description = "Write a value as JSON text: compact when `indent` is 0, else indented by that many spaces."
    value = Input(PortType.ANY)
    indent = Input(PortType.NUMBER, default=0, description="spaces per level, 0..10")
    sortKeys = Input(PortType.BOOLEAN, default=False)
    text = Output(PortType.STRING)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        indent = self.read_integer(ctx, "indent")
        if not 0 <= indent <= 10:
            raise self.fail(f"indent must be between 0 and 10, got {indent}")
        try:
            text = json.dumps(
                ctx.inputs.get("value"),
                ensure_ascii=False,
                allow_nan=False,
                sort_keys=self.read_boolean(ctx, "sortKeys"),
                indent=indent or None,
                separators=(",", ": ") if indent else (",", ":"),
            )
        except (TypeError, ValueError) as exc:
            raise self.fail(f"value cannot be written as JSON: {exc}") from None
        return {"text": text}


JSON_NODES: tuple[type[LibraryNode], ...] = (Parse, Stringify)
