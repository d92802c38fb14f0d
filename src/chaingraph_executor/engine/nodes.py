"""Writing nodes: declare ports once as class attributes, implement ``async def execute(ctx)``.

    class Add(Node):
        type = "math.add"
        title = "Add"
        a = Input(PortType.NUMBER, default=0)
        b = Input(PortType.NUMBER, default=0)
        result = Output(PortType.NUMBER)

        async def execute(self, ctx: NodeContext) -> dict[str, Any]:
            return {"result": ctx.inputs["a"] + ctx.inputs["b"]}

``execute`` returns the values of its output ports (or sets them with ``ctx.set_output``).
Raising fails the node: its ``__error``/``__errorMessage`` ports resolve, nothing else does.
A ``NodeRegistry`` maps ``type`` to the class; ``NodeRegistry.load_module`` adds every node
class found in a user module.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from chaingraph_executor.domain.flow import (
    ERROR_MESSAGE_PORT,
    ERROR_PORT,
    EXECUTE_PORT,
    SUCCESS_PORT,
    Direction,
    FlowNode,
    PortSpec,
    PortType,
)
from chaingraph_executor.errors import ExecutorError

if TYPE_CHECKING:
    from chaingraph_executor.engine.context import NodeContext


class _PortDecl:
    direction: Direction

    def __init__(
        self,
        type: PortType | str = PortType.ANY,
        *,
        default: Any = None,
        required: bool = False,
        title: str | None = None,
        description: str | None = None,
        options: list[str] | None = None,
        items: PortSpec | None = None,
        fields: list[PortSpec] | None = None,
        id: str | None = None,
    ) -> None:
        self.type = PortType(type)
        self.default = default
        self.required = required
        self.title = title
        self.description = description
        self.options = options
        self.items = items
        self.fields = fields
        self.id = id
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def spec(self) -> PortSpec:
        return PortSpec(
            id=self.id or self.name,
            type=self.type,
            direction=self.direction,
            title=self.title,
            description=self.description,
            required=self.required,
            default=self.default,
            options=self.options,
            items=self.items,
            fields=self.fields,
        )


class Input(_PortDecl):
    """An input port."""

    direction = Direction.INPUT


class Output(_PortDecl):
    """An output port."""

    direction = Direction.OUTPUT


SYSTEM_PORT_SPECS: tuple[PortSpec, ...] = (
    PortSpec(id=EXECUTE_PORT, type=PortType.BOOLEAN, direction=Direction.INPUT, default=True),
    PortSpec(id=SUCCESS_PORT, type=PortType.BOOLEAN, direction=Direction.OUTPUT),
    PortSpec(id=ERROR_PORT, type=PortType.BOOLEAN, direction=Direction.OUTPUT),
    PortSpec(id=ERROR_MESSAGE_PORT, type=PortType.STRING, direction=Direction.OUTPUT),
)


class Node:
    """Base class of every node type."""

    type: ClassVar[str] = ""
    title: ClassVar[str] = ""
    category: ClassVar[str] = "general"
    description: ClassVar[str] = ""
    #: False opts out of the system ports ``__execute``, ``__success``, ``__error``, ``__errorMessage``.
    flow_ports: ClassVar[bool] = True
    #: False marks event-only nodes (listeners): they run only for their event in a child execution.
    auto_execute: ClassVar[bool] = True
    #: True lets a flow declare extra ports on this node (``ports`` in the flow document).
    dynamic_ports: ClassVar[bool] = False
    #: Direction of the extra ports a flow may declare (None = both).
    dynamic_direction: ClassVar[Direction | None] = None
    #: For listeners: the input port naming the event they listen to.
    event_name_port: ClassVar[str | None] = None

    _declared: ClassVar[tuple[PortSpec, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        specs: dict[str, PortSpec] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                if isinstance(value, _PortDecl):
                    spec = value.spec()
                    specs[spec.id] = spec
        cls._declared = tuple(specs.values())

    def __init__(self, flow_node: FlowNode) -> None:
        self.flow_node = flow_node

    @classmethod
    def declared_ports(cls) -> tuple[PortSpec, ...]:
        """The node type's own ports (system ports excluded)."""
        return cls._declared

    @classmethod
    def port_specs(cls, flow_node: FlowNode | None = None) -> dict[str, PortSpec]:
        """All ports of a node of this type in a flow: declared, extra (dynamic) and system ports."""
        specs = {spec.id: spec for spec in cls._declared}
        if flow_node is not None and cls.dynamic_ports:
            for spec in flow_node.ports:
                specs.setdefault(spec.id, spec)
        if cls.flow_ports:
            for spec in SYSTEM_PORT_SPECS:
                specs.setdefault(spec.id, spec)
        return specs

    async def execute(self, ctx: NodeContext) -> Mapping[str, Any] | None:
        raise NotImplementedError


class UnknownNodeType(ExecutorError):
    """Unknown node type."""


@dataclass(frozen=True, slots=True)
class NodeTypeInfo:
    type: str
    title: str
    category: str
    description: str
    ports: tuple[PortSpec, ...]


class NodeRegistry:
    """Node types by ``type``."""

    def __init__(self, nodes: Iterable[type[Node]] = ()) -> None:
        self._types: dict[str, type[Node]] = {}
        for cls in nodes:
            self.register(cls)

    def register(self, cls: type[Node]) -> type[Node]:
        if not cls.type:
            raise ValueError(f"node class {cls.__qualname__} has no 'type'")
        existing = self._types.get(cls.type)
        if existing is not None and existing is not cls:
            raise ValueError(f"node type '{cls.type}' is registered twice ({existing.__qualname__})")
        self._types[cls.type] = cls
        return cls

    def load_module(self, module: str | ModuleType) -> list[str]:
        """Register every ``Node`` subclass with a ``type`` defined in ``module``."""
        mod = importlib.import_module(module) if isinstance(module, str) else module
        added = []
        for value in vars(mod).values():
            if (
                inspect.isclass(value)
                and issubclass(value, Node)
                and value.type
                and value.__module__ == mod.__name__
            ):
                self.register(value)
                added.append(value.type)
        return added

    def get(self, type_: str) -> type[Node] | None:
        return self._types.get(type_)

    def require(self, type_: str) -> type[Node]:
        cls = self._types.get(type_)
        if cls is None:
            raise UnknownNodeType(f"unknown node type '{type_}'")
        return cls

    def __contains__(self, type_: object) -> bool:
        return type_ in self._types

    def __len__(self) -> int:
        return len(self._types)

    def types(self) -> list[str]:
        return sorted(self._types)

    def describe(self) -> list[NodeTypeInfo]:
        return [
            NodeTypeInfo(cls.type, cls.title, cls.category, cls.description, cls.declared_ports())
            for _, cls in sorted(self._types.items())
        ]
