"""Constant value nodes: the ``value`` input (set in the flow) is published on the ``out`` port.

A node cannot have an input and an output with the same id, hence ``value`` -> ``out``.
"""

from __future__ import annotations

import copy
from typing import Any

from chaingraph_executor.domain.flow import PortType
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.library._common import LibraryNode, json_type
from chaingraph_executor.engine.nodes import Input, Output


class _ValueNode(LibraryNode):
    category = "values"
    expected = "anything"

    def check(self, value: Any) -> bool:
        return True

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        value = ctx.inputs.get("value")
        if value is not None and not self.check(value):
            raise self.fail(f"input 'value' must be {self.expected}, got {json_type(value)}")
        # a private copy: a consumer that mutates its input must not change the flow's constant
        return {"out": copy.deepcopy(value)}


class TextValue(_ValueNode):
    type = "value.text"
    title = "Text"
    description = "A constant text."
    expected = "a string"
    value = Input(PortType.STRING, default="", description="the text")
    out = Output(PortType.STRING)

    def check(self, value: Any) -> bool:
        return isinstance(value, str)


class NumberValue(_ValueNode):
    type = "value.number"
    title = "Number"
    description = "A constant number."
    expected = "a number"
    value = Input(PortType.NUMBER, default=0, description="the number")
    out = Output(PortType.NUMBER)

    def check(self, value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)


class BooleanValue(_ValueNode):
    type = "value.boolean"
    title = "Boolean"
    description = "A constant true or false."
    expected = "a boolean"
    value = Input(PortType.BOOLEAN, default=False, description="the boolean")
    out = Output(PortType.BOOLEAN)

    def check(self, value: Any) -> bool:
        return isinstance(value, bool)


class ObjectValue(_ValueNode):
    type = "value.object"
    title = "Object"
    description = "A constant JSON object."
    expected = "an object"
    value = Input(PortType.OBJECT, default={}, description="the object")
    out = Output(PortType.OBJECT)

    def check(self, value: Any) -> bool:
        return isinstance(value, dict)


class ArrayValue(_ValueNode):
    type = "value.array"
    title = "Array"
    description = "A constant JSON array."
    expected = "an array"
    value = Input(PortType.ARRAY, default=[], description="the array")
    out = Output(PortType.ARRAY)

    def check(self, value: Any) -> bool:
        return isinstance(value, list)


class SecretValue(_ValueNode):
    type = "value.secret"
    title = "Secret"
    description = "A secret text (API key, password); feeds secret or any-typed ports."
    expected = "a string"
    value = Input(PortType.SECRET, default="", description="the secret")
    out = Output(PortType.SECRET)

    def check(self, value: Any) -> bool:
        return isinstance(value, str)


VALUE_NODES: tuple[type[LibraryNode], ...] = (
    TextValue,
    NumberValue,
    BooleanValue,
    ObjectValue,
    ArrayValue,
    SecretValue,
)
