"""Arithmetic nodes. Integral results are published as integers (``6 / 3`` gives ``2``)."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from chaingraph_executor.domain.flow import PortType
from chaingraph_executor.engine.context import NodeContext
from chaingraph_executor.engine.library._common import LibraryNode, NodeInputError, Number, clean_number
from chaingraph_executor.engine.nodes import Input, Output

_MAX_EXPONENT_BITS = 1024  # beyond this an integer power is not a JSON number any more


class _MathNode(LibraryNode):
    category = "math"

    def result(self, value: Number) -> dict[str, Any]:
        try:
            return {"result": clean_number(value)}
        except NodeInputError as exc:
            raise self.fail(str(exc)) from None


class _Binary(_MathNode):
    a = Input(PortType.NUMBER, default=0)
    b = Input(PortType.NUMBER, default=0)
    result_port = Output(PortType.NUMBER, id="result")

    def apply(self, a: Number, b: Number) -> Number:
        raise NotImplementedError

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return self.result(self.apply(self.read_number(ctx, "a"), self.read_number(ctx, "b")))


class Add(_Binary):
    type = "math.add"
    title = "Add"
    description = "result = a + b"

    def apply(self, a: Number, b: Number) -> Number:
        return a + b


class Subtract(_Binary):
    type = "math.subtract"
    title = "Subtract"
    description = "result = a - b"

    def apply(self, a: Number, b: Number) -> Number:
        return a - b


class Multiply(_Binary):
    type = "math.multiply"
    title = "Multiply"
    description = "result = a * b"
    b = Input(PortType.NUMBER, default=1)

    def apply(self, a: Number, b: Number) -> Number:
        return a * b


class Divide(_Binary):
    type = "math.divide"
    title = "Divide"
    description = "result = a / b; fails on division by zero."
    b = Input(PortType.NUMBER, default=1)

    def apply(self, a: Number, b: Number) -> Number:
        if b == 0:
            raise self.fail("division by zero")
        return a / b


class Modulo(_Binary):
    type = "math.modulo"
    title = "Modulo"
    description = "result = a mod b (floored: the result has the sign of b); fails when b is zero."
    b = Input(PortType.NUMBER, default=1)

    def apply(self, a: Number, b: Number) -> Number:
        if b == 0:
            raise self.fail("modulo by zero")
        return a % b


class Power(_MathNode):
    type = "math.power"
    title = "Power"
    description = "result = base ** exponent"
    base = Input(PortType.NUMBER, default=0)
    exponent = Input(PortType.NUMBER, default=1)
    result_port = Output(PortType.NUMBER, id="result")

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        base = self.read_number(ctx, "base")
        exponent = self.read_number(ctx, "exponent")
        if base == 0 and exponent < 0:
            raise self.fail("zero cannot be raised to a negative power")
        if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
            if abs(base) > 1 and exponent * math.log2(abs(base)) > _MAX_EXPONENT_BITS:
                raise self.fail(f"{base} ** {exponent} is too large")
            return self.result(base**exponent)
        try:
            return self.result(math.pow(base, exponent))
        except OverflowError:
            raise self.fail(f"{base} ** {exponent} is too large") from None
        except ValueError:
            raise self.fail(f"{base} ** {exponent} is not a real number") from None


class Round(_MathNode):
    type = "math.round"
    title = "Round"
    description = "Round to `digits` decimals (negative: tens, hundreds...); halves round away from zero."
    value = Input(PortType.NUMBER, default=0)
    digits = Input(PortType.NUMBER, default=0, description="decimals to keep, -20..20")
    result_port = Output(PortType.NUMBER, id="result")

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        value = self.read_number(ctx, "value")
        digits = self.read_integer(ctx, "digits")
        if not -20 <= digits <= 20:
            raise self.fail(f"digits must be between -20 and 20, got {digits}")
        with localcontext() as dctx:
            dctx.prec = 100
            # repr() gives the shortest text of the float: 1.005 rounds to 1.01, as people expect
            rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
        return self.result(int(rounded) if digits <= 0 else float(rounded))


class Abs(_MathNode):
    type = "math.abs"
    title = "Absolute value"
    description = "result = |value|"
    value = Input(PortType.NUMBER, default=0)
    result_port = Output(PortType.NUMBER, id="result")

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        return self.result(abs(self.read_number(ctx, "value")))


class _Extreme(_MathNode):
    a = Input(PortType.NUMBER)
    b = Input(PortType.NUMBER)
    values = Input(PortType.ARRAY, description="numbers; used instead of a and b when given")
    result_port = Output(PortType.NUMBER, id="result")

    def pick(self, numbers: list[Number]) -> Number:
        raise NotImplementedError

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        values = self.opt_array(ctx, "values")
        if values is not None:
            numbers = self.check_numbers(values, "values")
            if not numbers:
                raise self.fail("'values' is empty")
        else:
            numbers = [n for n in (self.opt_number(ctx, "a"), self.opt_number(ctx, "b")) if n is not None]
            if not numbers:
                raise self.fail("give 'a' and 'b' or a non-empty 'values' array")
        return self.result(self.pick(numbers))


class Min(_Extreme):
    type = "math.min"
    title = "Minimum"
    description = "The smallest of a and b, or of the array `values`."

    def pick(self, numbers: list[Number]) -> Number:
        return min(numbers)


class Max(_Extreme):
    type = "math.max"
    title = "Maximum"
    description = "The largest of a and b, or of the array `values`."

    def pick(self, numbers: list[Number]) -> Number:
        return max(numbers)


class Sum(_MathNode):
    type = "math.sum"
    title = "Sum"
    description = "The sum of the numbers in `values` (0 when empty)."
    values = Input(PortType.ARRAY, default=[])
    result_port = Output(PortType.NUMBER, id="result")

    async def execute(self, ctx: NodeContext) -> dict[str, Any]:
        numbers = self.check_numbers(self.read_array(ctx, "values"), "values")
        return self.result(math.fsum(numbers) if any(isinstance(n, float) for n in numbers) else sum(numbers))


MATH_NODES: tuple[type[LibraryNode], ...] = (
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Power,
    Round,
    Abs,
    Min,
    Max,
    Sum,
)
