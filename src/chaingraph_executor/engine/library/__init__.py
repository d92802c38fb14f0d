"""The built-in node library: values, math, logic, text, JSON, collections, flow control, debug,
HTTP, events and streams. ``builtin_registry()`` gives a registry holding all of them."""

from __future__ import annotations

from chaingraph_executor.engine.library.collections import COLLECTION_NODES
from chaingraph_executor.engine.library.debug import DEBUG_NODES
from chaingraph_executor.engine.library.events import EVENT_NODES
from chaingraph_executor.engine.library.flow_control import FLOW_NODES
from chaingraph_executor.engine.library.http import HTTP_NODES
from chaingraph_executor.engine.library.json_nodes import JSON_NODES
from chaingraph_executor.engine.library.logic import LOGIC_NODES
from chaingraph_executor.engine.library.math import MATH_NODES
from chaingraph_executor.engine.library.streams import STREAM_NODES
from chaingraph_executor.engine.library.text import TEXT_NODES
from chaingraph_executor.engine.library.values import VALUE_NODES
from chaingraph_executor.engine.nodes import Node, NodeRegistry

BUILTIN_NODES: tuple[type[Node], ...] = (
    *VALUE_NODES,
    *MATH_NODES,
    *LOGIC_NODES,
    *TEXT_NODES,
    *JSON_NODES,
    *COLLECTION_NODES,
    *FLOW_NODES,
    *DEBUG_NODES,
    *HTTP_NODES,
    *EVENT_NODES,
    *STREAM_NODES,
)


def builtin_registry() -> NodeRegistry:
    """A new registry with every built-in node type (add your own with ``register``/``load_module``)."""
    return NodeRegistry(BUILTIN_NODES)


__all__ = ["BUILTIN_NODES", "builtin_registry"]
