"""Boolean logic and comparison nodes."""

from __future__ import annotations

from typing import Any

from chaingraph_executor.domain.flow import PortType
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.library._common import COMPARE_OPERATORS, LibraryNode, NodeInputError, compare
from chaingraph_executor.engine.nodes import Input, Output


class _BooleanBinary(LibraryNode):
    category = "logic"
    a = Input(PortType.BOOLEAN, default=False)
    b = Input(PortType.BOOLEAN, default=False)
    result = Output(PortType.BOOLEAN)

    def apply(self, a: bool, b: bool) -> bool:
        raise NotImplementedError

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"result": self.apply(self.read_boolean(ctx, "a"), self.read_boolean(ctx, "b"))}


class And(_BooleanBinary):
    type = "logic.and"
    title = "And"
    description = "True when both a and b are true."

    def apply(self, a: bool, b: bool) -> bool:
        return a and b


class Or(_BooleanBinary):
    type = "logic.or"
    title = "Or"
    description = "True when a or b (or both) is true."

    def apply(self, a: bool, b: bool) -> bool:
        return a or b


class Xor(_BooleanBinary):
    type = "logic.xor"
    title = "Exclusive or"
    description = "True when exactly one of a and b is true."

    def apply(self, a: bool, b: bool) -> bool:
        return a != b


class Not(LibraryNode):
    type = "logic.not"
    title = "Not"
    category = "logic"
    description = "The opposite of value."
    value = Input(PortType.BOOLEAN, default=False)
    result = Output(PortType.BOOLEAN)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return {"result": not self.read_boolean(ctx, "value")}


class Compare(LibraryNode):
    type = "logic.compare"
    title = "Compare"
    category = "logic"
    description = (
        "Compare a with b: == and != compare JSON values (1 is not true); >, >=, <, <= need two "
        "numbers or two strings; contains looks in a string, an array or an object's keys; "
        "startsWith and endsWith need strings."
    )
    a = Input(PortType.ANY)
    b = Input(PortType.ANY)
    operator = Input(PortType.ENUM, default="==", options=COMPARE_OPERATORS)
    result = Output(PortType.BOOLEAN)

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        operator = self.read_string(ctx, "operator")
        try:
            return {"result": compare(operator, ctx.inputs.get("a"), ctx.inputs.get("b"))}
        except NodeInputError as exc:
            raise self.fail(str(exc)) from None


LOGIC_NODES: tuple[type[LibraryNode], ...] = (And, Or, Xor, Not, Compare)
