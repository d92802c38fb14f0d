"""Invalid flows are rejected with messages that name the node, edge or port."""

from __future__ import annotations

from typing import Any

import pytest

from chaingraph_executor.domain.flow import PortSpec, PortType, parse_flow
from chaingraph_executor.engine.graph import compatible, compile_flow
from chaingraph_executor.errors import InvalidFlow
from chaingraph_executor.testing import flow_doc, registry_for_tests


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidFlow) as info:
        compile_flow(parse_flow(doc), registry_for_tests())
    return info.value.problems


def test_unknown_node_type() -> None:
    assert problems(flow_doc([{"id": "x", "type": "no.such"}])) == ["node 'x': unknown node type 'no.such'"]


def test_duplicate_ids() -> None:
    doc = flow_doc(
        [
            {"id": "a", "type": "test.number"},
            {"id": "a", "type": "test.number"},
            {"id": "b", "type": "test.add"},
        ],
        [("a.out", "b.a"), ("a.out", "b.b")],
    )
    doc["edges"][1]["id"] = "e0"
    found = problems(doc)
    assert "duplicate node id 'a'" in found
    assert "duplicate edge id 'e0'" in found


def test_dangling_edges_name_the_edge() -> None:
    doc = flow_doc([{"id": "a", "type": "test.number"}], [("a.out", "ghost.a"), ("a.nope", "a.value")])
    found = problems(doc)
    assert "edge 'e0': target node 'ghost' does not exist" in found
    assert "edge 'e1': node 'a' has no port 'nope'" in found


def test_incompatible_port_types() -> None:
    doc = flow_doc([{"id": "t", "type": "test.text"}, {"id": "s", "type": "test.add"}], [("t.out", "s.a")])
    assert problems(doc) == ["edge 'e0': port 't.out' (string) cannot feed 's.a' (number)"]


def test_wrong_direction() -> None:
    doc = flow_doc(
        [{"id": "a", "type": "test.number"}, {"id": "b", "type": "test.add"}], [("b.a", "a.value")]
    )
    assert problems(doc) == ["edge 'e0': source port 'b.a' is not an output port"]


def test_cycles_are_named() -> None:
    doc = flow_doc(
        [{"id": "a", "type": "test.add"}, {"id": "b", "type": "test.add"}, {"id": "c", "type": "test.add"}],
        [("a.result", "b.a"), ("b.result", "c.a"), ("c.result", "a.a")],
    )
    (found,) = problems(doc)
    assert found.startswith("cycle: ")
    assert set(found.removeprefix("cycle: ").split(" -> ")) == {"a", "b", "c"}


def test_self_loop() -> None:
    doc = flow_doc([{"id": "a", "type": "test.add"}], [("a.result", "a.b")])
    assert problems(doc) == ["edge 'e0': connects node 'a' to itself (cycle)"]


def test_input_values_are_type_checked() -> None:
    doc = flow_doc([{"id": "a", "type": "test.add", "inputs": {"a": "one", "zz": 1}}])
    found = problems(doc)
    assert "node 'a' port 'a': expected number, got string" in found
    assert "node 'a': unknown input port 'zz' for type 'test.add'" in found


def test_extra_ports_refused_unless_the_type_allows_them() -> None:
    doc = flow_doc([{"id": "a", "type": "test.add", "ports": [{"id": "x", "type": "number"}]}])
    assert problems(doc) == ["node 'a': node type 'test.add' does not accept extra ports"]


def test_listener_needs_an_event_name() -> None:
    assert problems(flow_doc([{"id": "l", "type": "test.listen"}])) == [
        "node 'l': listener needs a non-empty 'eventName' input"
    ]


def test_document_shape_errors_name_the_node() -> None:
    with pytest.raises(InvalidFlow) as info:
        parse_flow({"id": "f", "nodes": [{"id": "n1", "type": "x", "bogus": 1}]})
    assert info.value.problems[0].startswith("node 'n1'.bogus")
    with pytest.raises(InvalidFlow) as info:
        parse_flow({"nodes": []})
    assert info.value.problems == ["id: Field required"]


def test_port_type_compatibility_rules() -> None:
    def p(t: str, **kw: Any) -> PortSpec:
        return PortSpec(id="p", type=PortType(t), options=["a"] if t == "enum" else None, **kw)

    assert compatible(p("any"), p("number"))
    assert compatible(p("number"), p("any"))
    assert compatible(p("enum"), p("string"))
    assert not compatible(p("secret"), p("string"))
    assert not compatible(p("boolean"), p("number"))
    assert compatible(p("array", items=p("number")), p("array", items=p("number")))
    assert not compatible(p("array", items=p("number")), p("array", items=p("string")))
    src = p("object", fields=[PortSpec(id="x", type=PortType.NUMBER)])
    dst_ok = p("object", fields=[PortSpec(id="x", type=PortType.NUMBER)])
    dst_bad = p("object", fields=[PortSpec(id="y", type=PortType.NUMBER, required=True)])
    assert compatible(src, dst_ok)
    assert not compatible(src, dst_bad)


def test_nested_values_are_checked() -> None:
    from chaingraph_executor.engine.graph import value_problem

    spec = PortSpec(
        id="cfg",
        type=PortType.OBJECT,
        fields=[
            PortSpec(id="tags", type=PortType.ARRAY, items=PortSpec(id="t", type=PortType.STRING)),
            PortSpec(id="mode", type=PortType.ENUM, options=["a", "b"], required=True),
        ],
    )
    assert value_problem(spec, {"tags": ["x"], "mode": "a"}, "cfg") is None
    assert (
        value_problem(spec, {"tags": ["x", 2], "mode": "a"}, "cfg")
        == "cfg.tags[1]: expected string, got number"
    )
    assert value_problem(spec, {"mode": "c"}, "cfg") == "cfg.mode: 'c' is not one of a, b"
    assert value_problem(spec, {}, "cfg") == "cfg: missing required field 'mode'"
