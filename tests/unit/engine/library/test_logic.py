"""Logic nodes, run through the engine."""

from __future__ import annotations

from typing import Any

import pytest

from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.testing import node_error as error_of
from chaingraph_executor.testing import run_node

REG = builtin_registry()


async def result_of(type_: str, inputs: dict[str, Any]) -> Any:
    run = await run_node(type_, inputs)
    assert run.result.status == "completed", run.result.error_message
    return run.result.outputs["n"]["result"]


@pytest.mark.parametrize(("a", "b"), [(False, False), (False, True), (True, False), (True, True)])
async def test_boolean_operators_truth_tables(a: bool, b: bool) -> None:
    assert await result_of("logic.and", {"a": a, "b": b}) is (a and b)
    assert await result_of("logic.or", {"a": a, "b": b}) is (a or b)
    assert await result_of("logic.xor", {"a": a, "b": b}) is (a != b)


async def test_not() -> None:
    assert await result_of("logic.not", {"value": True}) is False
    assert await result_of("logic.not", {}) is True


@pytest.mark.parametrize(
    ("a", "op", "b", "expected"),
    [
        (1, "==", 1.0, True),
        (1, "==", True, False),
        ({"x": [1, 2]}, "==", {"x": [1, 2]}, True),
        ("a", "!=", "b", True),
        (None, "==", None, True),
        (3, ">", 2, True),
        (2, ">=", 2, True),
        ("apple", "<", "banana", True),
        (3, "<=", 2, False),
        ("hello world", "contains", "lo w", True),
        ([1, {"a": 1}], "contains", {"a": 1}, True),
        ({"key": 1}, "contains", "key", True),
        ({"key": 1}, "contains", "other", False),
        ("filename.json", "endsWith", ".json", True),
        ("filename.json", "startsWith", "file", True),
        ("filename.json", "startsWith", "json", False),
    ],
)
async def test_compare(a: Any, op: str, b: Any, expected: bool) -> None:
    assert await result_of("logic.compare", {"a": a, "b": b, "operator": op}) is expected


@pytest.mark.parametrize(
    ("a", "op", "b", "message"),
    [
        (1, ">", "2", "logic.compare: cannot compare number with string using '>'"),
        (None, "<", 1, "logic.compare: cannot compare null with number using '<'"),
        (
            "abc",
            "contains",
            1,
            "logic.compare: 'contains' on a string needs a string to look for, got number",
        ),
        (
            5,
            "contains",
            1,
            "logic.compare: 'contains' needs a string, array or object to look in, got number",
        ),
        (["a"], "startsWith", "a", "logic.compare: 'startsWith' needs two strings, got array and string"),
    ],
)
async def test_compare_errors(a: Any, op: str, b: Any, message: str) -> None:
    assert await error_of("logic.compare", {"a": a, "b": b, "operator": op}) == message


async def test_unknown_operator_is_refused() -> None:
    from chaingraph_executor.errors import InvalidFlow

    with pytest.raises(InvalidFlow, match="'~=' is not one of"):
        await run_node("logic.compare", {"operator": "~="})
    assert await error_of("logic.compare", feed={"operator": "~="}) == (
        "logic.compare: unknown operator '~=' (use one of ==, !=, >, >=, <, <=, contains, startsWith, endsWith)"
    )


async def test_non_boolean_inputs_fail() -> None:
    assert await error_of("logic.and", feed={"a": 1}) == "logic.and: input 'a' must be a boolean, got number"
    assert await error_of("logic.not", feed={"value": None}) == "logic.not: input 'value' has no value"
