"""Value nodes and the library registry, run through the engine."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chaingraph_executor.engine.library import BUILTIN_NODES, builtin_registry
from chaingraph_executor.errors import InvalidFlow
from chaingraph_executor.testing import flow_doc, run_flow, run_node

REG = builtin_registry()


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("value.text", "hello"),
        ("value.number", 4.5),
        ("value.boolean", True),
        ("value.object", {"a": [1, {"b": None}]}),
        ("value.array", [1, "two", {"three": 3}]),
        ("value.secret", "s3cr3t"),
    ],
)
async def test_value_nodes_publish_their_value(type_: str, value: Any) -> None:
    run = await run_node(type_, {"value": value})
    assert run.result.status == "completed"
    assert run.result.outputs == {"n": {"out": value}}


@pytest.mark.parametrize(
    ("type_", "default"),
    [
        ("value.text", ""),
        ("value.number", 0),
        ("value.boolean", False),
        ("value.object", {}),
        ("value.array", []),
    ],
)
async def test_value_nodes_have_defaults(type_: str, default: Any) -> None:
    run = await run_node(type_)
    assert run.result.outputs == {"n": {"out": default}}


async def test_value_object_output_is_a_copy_of_the_flow_constant() -> None:
    doc = flow_doc(
        [
            {"id": "o", "type": "value.object", "inputs": {"value": {"list": [1]}}},
            {"id": "s", "type": "object.set", "inputs": {"path": "list.1", "value": 2}},
        ],
        [("o.out", "s.object")],
    )
    run = await run_flow(doc, registry=REG)
    assert run.result.outputs == {"s": {"result": {"list": [1, 2]}}}
    assert doc["nodes"][0]["inputs"]["value"] == {"list": [1]}


async def test_value_node_rejects_a_wrong_type_at_compile_time() -> None:
    with pytest.raises(InvalidFlow, match="expected number, got string"):
        await run_node("value.number", {"value": "three"})


async def test_value_node_rejects_a_wrong_type_at_run_time() -> None:
    run = await run_node("value.text", feed={"value": 3})
    assert run.result.status == "failed"
    assert (
        run.result.error_message == "Node 'n' failed: value.text: input 'value' must be a string, got number"
    )


def test_registry_holds_every_builtin_with_a_dotted_lowercase_type() -> None:
    registry = builtin_registry()
    assert len(registry) == len(BUILTIN_NODES) == len({cls.type for cls in BUILTIN_NODES})
    for cls in BUILTIN_NODES:
        assert re.fullmatch(r"[a-z]+(\.[a-z][a-z-]*)+", cls.type), cls.type
        assert cls.title and cls.description and cls.category != "general", cls.type
    assert builtin_registry() is not registry  # a fresh registry each time: callers may add types


def test_no_node_declares_the_same_port_id_twice() -> None:
    from chaingraph_executor.engine.nodes import _PortDecl

    for cls in BUILTIN_NODES:
        decls = {
            name: value
            for klass in reversed(cls.__mro__)
            for name, value in vars(klass).items()
            if isinstance(value, _PortDecl)
        }
        ids = [d.id or d.name for d in decls.values()]
        assert len(ids) == len(set(ids)), cls.type
