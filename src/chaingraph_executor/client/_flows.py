"""Input overrides on a flow document: ``{"nodeId.port": value}``."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["apply_inputs", "split_target"]


def split_target(target: str, node_ids: list[str]) -> tuple[str, str]:
    """``"node.port"`` → ``("node", "port")``. Node ids may contain dots: the longest id of the
    flow that the target starts with wins. Raises ``ValueError`` naming the flow's nodes."""
    if "." not in target:
        raise ValueError(f"{target}: expected nodeId.port")
    known = set(node_ids)
    cuts = [i for i, char in enumerate(target) if char == "."]
    for cut in reversed(cuts):
        node_id, port = target[:cut], target[cut + 1 :]
        if node_id in known:
            if not port:
                raise ValueError(f"{target}: expected nodeId.port (the port is missing)")
            return node_id, port
    node_id = target[: cuts[0]]
    listing = ", ".join(node_ids) if node_ids else "none"
    raise ValueError(f"{target}: the flow has no node '{node_id}' (its nodes: {listing})")


def apply_inputs(flow: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the flow document with ``inputs`` (``{"nodeId.port": value}``) written into
    the nodes' ``inputs``. Unknown nodes raise ``ValueError``; ports are checked by the server
    when the flow is uploaded."""
    document: dict[str, Any] = copy.deepcopy(dict(flow))
    nodes = [n for n in document.get("nodes") or [] if isinstance(n, dict) and isinstance(n.get("id"), str)]
    by_id = {n["id"]: n for n in nodes}
    for target, value in inputs.items():
        node_id, port = split_target(target, list(by_id))
        node = by_id[node_id]
        node_inputs = node.get("inputs")
        if not isinstance(node_inputs, dict):
            node_inputs = node["inputs"] = {}
        node_inputs[port] = copy.deepcopy(value)
    return document
