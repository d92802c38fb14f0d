"""The memory backend: every store over one shared ``MemoryState`` (fast unit tests, same
semantics as the SQL backend). ``MemoryBackend`` builds them all."""

from __future__ import annotations

from types import TracebackType

from chaingraph_executor.backends.memory.events import InMemoryEventLog
from chaingraph_executor.backends.memory.executions import InMemoryExecutionStore
from chaingraph_executor.backends.memory.flows import InMemoryFlowStore
from chaingraph_executor.backends.memory.state import MemoryState
from chaingraph_executor.backends.memory.users import InMemoryUserStore
from chaingraph_executor.backends.memory.workers import InMemoryWorkerRegistry
from chaingraph_executor.backends.subscription import DEFAULT_POLL_INTERVAL_S, WakeupHub

__all__ = [
    "InMemoryEventLog",
    "InMemoryExecutionStore",
    "InMemoryFlowStore",
    "InMemoryUserStore",
    "InMemoryWorkerRegistry",
    "MemoryBackend",
    "MemoryState",
]


class MemoryBackend:
    """``async with MemoryBackend() as backend:`` → ``backend.flows``, ``.executions``, ``.events``,
    ``.users``, ``.workers``, ``.notifier`` (the in-process wake-up hub), ``.state``."""

    def __init__(
        self,
        *,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        control_poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        state: MemoryState | None = None,
    ) -> None:
        self.state = state or MemoryState()
        self.notifier: WakeupHub = self.state.hub
        self.flows = InMemoryFlowStore(self.state)
        self.executions = InMemoryExecutionStore(self.state, control_poll_interval_s=control_poll_interval_s)
        self.events = InMemoryEventLog(self.state, poll_interval_s=poll_interval_s)
        self.users = InMemoryUserStore(self.state)
        self.workers = InMemoryWorkerRegistry(self.state)

    async def __aenter__(self) -> MemoryBackend:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None
