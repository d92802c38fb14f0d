"""Validating a flow against the node registry and compiling it for the engine.

``compile_flow`` rejects, with messages that name the node, edge or port:
duplicate ids, unknown node types, extra ports on node types that do not accept them,
unknown input names, input values of the wrong type, dangling edges, edges between
ports of the wrong direction or of incompatible types, and cycles.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chaingraph_executor.domain.flow import (
    ERROR_PORTS,
    SYSTEM_PORTS,
    Direction,
    Edge,
    Flow,
    FlowNode,
    PortSpec,
    PortType,
)
from chaingraph_executor.engine.nodes import Node, NodeRegistry
from chaingraph_executor.errors import InvalidFlow


@dataclass(slots=True)
class CompiledEdge:
    index: int
    edge: Edge
    source: int
    target: int
    wire: dict[str, Any]

    @property
    def from_error_port(self) -> bool:
        return self.edge.source_port_id in ERROR_PORTS


@dataclass(slots=True)
class CompiledNode:
    index: int
    node: FlowNode
    cls: type[Node]
    ports: dict[str, PortSpec]
    defaults: dict[str, Any]
    # target port id -> indices of incoming edges
    incoming: dict[str, list[int]] = field(default_factory=dict)
    # source port id -> indices of outgoing edges
    outgoing: dict[str, list[int]] = field(default_factory=dict)
    handles_error: bool = False
    is_sink: bool = True
    # names of the events this node is bound to (None: not event-bound)
    event_names: frozenset[str] | None = None
    listens_for: str | None = None
    # output ports of type secret: their values never appear in events
    secret_outputs: frozenset[str] = frozenset()
    snapshot: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.node.id


@dataclass(slots=True)
class CompiledFlow:
    flow: Flow
    nodes: list[CompiledNode]
    edges: list[CompiledEdge]
    by_id: dict[str, CompiledNode]
    metadata_json: dict[str, Any]

    def included(self, event_name: str | None) -> list[bool]:
        """Which nodes take part in a run without (``None``) or with an event context."""
        result = []
        for cn in self.nodes:
            if event_name is None:
                result.append(cn.cls.auto_execute and cn.event_names is None)
            elif cn.listens_for is not None:
                result.append(cn.listens_for == event_name)
            else:
                result.append(
                    cn.cls.auto_execute and cn.event_names is not None and event_name in cn.event_names
                )
        return result


def compatible(source: PortSpec, target: PortSpec) -> bool:
    """Whether values of ``source`` may flow into ``target``."""
    s, t = source.type, target.type
    if PortType.ANY in (s, t):
        return True
    if s == t:
        if s is PortType.ARRAY and source.items is not None and target.items is not None:
            return compatible(source.items, target.items)
        if s is PortType.OBJECT and source.fields is not None and target.fields is not None:
            have = {f.id: f for f in source.fields}
            for want in target.fields:
                got = have.get(want.id)
                if got is None:
                    if want.required:
                        return False
                elif not compatible(got, want):
                    return False
        return True
    return (s, t) in {
        (PortType.ENUM, PortType.STRING),
        (PortType.STRING, PortType.ENUM),
        (PortType.STRING, PortType.SECRET),
    }


def value_problem(spec: PortSpec, value: Any, where: str) -> str | None:
    """Describe why ``value`` does not fit ``spec`` (``None`` when it fits)."""
    if value is None:
        return None
    t = spec.type
    ok: bool
    if t is PortType.ANY:
        return None
    if t in (PortType.STRING, PortType.SECRET):
        ok = isinstance(value, str)
    elif t is PortType.NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif t is PortType.BOOLEAN:
        ok = isinstance(value, bool)
    elif t is PortType.ENUM:
        if not isinstance(value, str):
            ok = False
        elif spec.options and value not in spec.options:
            return f"{where}: '{value}' is not one of {', '.join(spec.options)}"
        else:
            ok = True
    elif t is PortType.ARRAY:
        if not isinstance(value, list):
            ok = False
        else:
            if spec.items is not None:
                for i, item in enumerate(value):
                    problem = value_problem(spec.items, item, f"{where}[{i}]")
                    if problem:
                        return problem
            ok = True
    elif t is PortType.OBJECT:
        if not isinstance(value, dict):
            ok = False
        else:
            for f in spec.fields or ():
                if f.id in value:
                    problem = value_problem(f, value[f.id], f"{where}.{f.id}")
                    if problem:
                        return problem
                elif f.required:
                    return f"{where}: missing required field '{f.id}'"
            ok = True
    else:  # stream
        return f"{where}: a stream port cannot have a fixed value"
    if ok:
        return None
    return f"{where}: expected {t.value}, got {_json_type(value)}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _duplicates(ids: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dups: list[str] = []
    for i in ids:
        if i in seen and i not in dups:
            dups.append(i)
        seen.add(i)
    return dups


def compile_flow(flow: Flow, registry: NodeRegistry) -> CompiledFlow:
    """Validate ``flow`` and build the engine's view of it; raises ``InvalidFlow``."""
    problems: list[str] = []
    problems += [f"duplicate node id '{d}'" for d in _duplicates(n.id for n in flow.nodes)]
    problems += [f"duplicate edge id '{d}'" for d in _duplicates(e.id for e in flow.edges)]

    nodes: list[CompiledNode] = []
    by_id: dict[str, CompiledNode] = {}
    for node in flow.nodes:
        cls = registry.get(node.type)
        if cls is None:
            problems.append(f"node '{node.id}': unknown node type '{node.type}'")
            continue
        if node.ports and not cls.dynamic_ports:
            problems.append(f"node '{node.id}': node type '{node.type}' does not accept extra ports")
        elif node.ports:
            for spec in node.ports:
                if spec.id in SYSTEM_PORTS or spec.id in {p.id for p in cls.declared_ports()}:
                    problems.append(f"node '{node.id}': extra port '{spec.id}' clashes with a built-in port")
                elif cls.dynamic_direction is not None and spec.direction is not cls.dynamic_direction:
                    problems.append(
                        f"node '{node.id}': extra port '{spec.id}' must be an "
                        f"{cls.dynamic_direction.value} port"
                    )
        ports = cls.port_specs(node)
        defaults: dict[str, Any] = {}
        for spec in ports.values():
            if spec.direction is Direction.INPUT:
                defaults[spec.id] = spec.default
        for name, value in node.inputs.items():
            input_spec = ports.get(name)
            if input_spec is None or input_spec.direction is not Direction.INPUT:
                problems.append(f"node '{node.id}': unknown input port '{name}' for type '{node.type}'")
                continue
            problem = value_problem(input_spec, value, f"node '{node.id}' port '{name}'")
            if problem:
                problems.append(problem)
            defaults[name] = value
        cn = CompiledNode(
            index=len(nodes),
            node=node,
            cls=cls,
            ports=ports,
            defaults=defaults,
            snapshot={"id": node.id, "type": node.type, "title": node.title or cls.title or node.type},
        )
        cn.secret_outputs = frozenset(
            s.id for s in ports.values() if s.direction is Direction.OUTPUT and s.type is PortType.SECRET
        )
        if cls.event_name_port is not None:
            name_value = defaults.get(cls.event_name_port)
            if not isinstance(name_value, str) or not name_value:
                problems.append(f"node '{node.id}': listener needs a non-empty '{cls.event_name_port}' input")
            else:
                cn.listens_for = name_value
        if node.id not in by_id:
            by_id[node.id] = cn
            nodes.append(cn)

    edges: list[CompiledEdge] = []
    for edge in flow.edges:
        src = by_id.get(edge.source_node_id)
        dst = by_id.get(edge.target_node_id)
        label = f"edge '{edge.id}'"
        if src is None:
            if flow.node(edge.source_node_id) is None:
                problems.append(f"{label}: source node '{edge.source_node_id}' does not exist")
            continue
        if dst is None:
            if flow.node(edge.target_node_id) is None:
                problems.append(f"{label}: target node '{edge.target_node_id}' does not exist")
            continue
        sp = src.ports.get(edge.source_port_id)
        tp = dst.ports.get(edge.target_port_id)
        if sp is None:
            problems.append(f"{label}: node '{src.id}' has no port '{edge.source_port_id}'")
            continue
        if tp is None:
            problems.append(f"{label}: node '{dst.id}' has no port '{edge.target_port_id}'")
            continue
        if sp.direction is not Direction.OUTPUT:
            problems.append(f"{label}: source port '{src.id}.{sp.id}' is not an output port")
            continue
        if tp.direction is not Direction.INPUT:
            problems.append(f"{label}: target port '{dst.id}.{tp.id}' is not an input port")
            continue
        if not compatible(sp, tp):
            problems.append(
                f"{label}: port '{src.id}.{sp.id}' ({sp.type.value}) cannot feed "
                f"'{dst.id}.{tp.id}' ({tp.type.value})"
            )
            continue
        if src is dst:
            problems.append(f"{label}: connects node '{src.id}' to itself (cycle)")
            continue
        ce = CompiledEdge(
            index=len(edges),
            edge=edge,
            source=src.index,
            target=dst.index,
            wire={
                "id": edge.id,
                "sourceNodeId": edge.source_node_id,
                "sourcePortId": edge.source_port_id,
                "targetNodeId": edge.target_node_id,
                "targetPortId": edge.target_port_id,
                "metadata": edge.metadata,
                "status": "active",
            },
        )
        edges.append(ce)
        src.outgoing.setdefault(sp.id, []).append(ce.index)
        dst.incoming.setdefault(tp.id, []).append(ce.index)
        if sp.id in ERROR_PORTS:
            src.handles_error = True
        if sp.id not in SYSTEM_PORTS:
            src.is_sink = False

    cycle = _find_cycle(nodes, edges)
    if cycle:
        problems.append("cycle: " + " -> ".join(cycle))
    if problems:
        raise InvalidFlow(problems)

    _bind_event_nodes(nodes, edges)
    return CompiledFlow(
        flow=flow,
        nodes=nodes,
        edges=edges,
        by_id=by_id,
        metadata_json={"id": flow.id, **flow.metadata.model_dump(mode="json", by_alias=True)},
    )


def _find_cycle(nodes: list[CompiledNode], edges: list[CompiledEdge]) -> list[str] | None:
    succ: list[list[int]] = [[] for _ in nodes]
    indeg = [0] * len(nodes)
    for e in edges:
        succ[e.source].append(e.target)
        indeg[e.target] += 1
    queue = deque(i for i, d in enumerate(indeg) if d == 0)
    seen = 0
    while queue:
        i = queue.popleft()
        seen += 1
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                queue.append(j)
    if seen == len(nodes):
        return None
    # Walk backwards inside the remaining nodes until a node repeats: that loop is a cycle.
    remaining = {i for i, d in enumerate(indeg) if d > 0}
    pred: dict[int, int] = {}
    for e in edges:
        if e.source in remaining and e.target in remaining:
            pred[e.target] = e.source
    start = min(remaining)
    path: list[int] = []
    pos: dict[int, int] = {}
    cur = start
    while cur not in pos:
        pos[cur] = len(path)
        path.append(cur)
        cur = pred[cur]
    loop = path[pos[cur] :]
    loop.reverse()
    return [nodes[i].id for i in [*loop, loop[0]]]


def _bind_event_nodes(nodes: list[CompiledNode], edges: list[CompiledEdge]) -> None:
    """Mark nodes bound to listeners (upstream §7.5) with the event names they serve."""
    listeners = [cn for cn in nodes if cn.listens_for is not None]
    if not listeners:
        return
    succ: list[list[int]] = [[] for _ in nodes]
    pred: list[list[int]] = [[] for _ in nodes]
    for e in edges:
        succ[e.source].append(e.target)
        pred[e.target].append(e.source)
    is_listener = {cn.index for cn in listeners}
    bound: dict[int, set[str]] = {}

    def walk(start: list[int], step: list[list[int]], stop_at_listeners: bool) -> set[int]:
        seen: set[int] = set()
        stack = [i for i in start if i not in is_listener]
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            for j in step[i]:
                if stop_at_listeners and j in is_listener:
                    continue
                stack.append(j)
        return seen

    for listener in listeners:
        name = listener.listens_for
        assert name is not None
        group = {listener.index}
        group |= walk(pred[listener.index], pred, stop_at_listeners=True)
        downstream = walk(succ[listener.index], succ, stop_at_listeners=True)
        group |= downstream
        group |= walk([p for d in downstream for p in pred[d]], pred, stop_at_listeners=True)
        for i in group:
            bound.setdefault(i, set()).add(name)
    for i, names in bound.items():
        nodes[i].event_names = frozenset(names)
