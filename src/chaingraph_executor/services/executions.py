"""Use cases of executions: create, start, stop, pause, resume, step, breakpoints, read, subscribe.

Every method takes the calling :class:`Principal`; executions belong to their flow's owner and
only the owner or an admin may see or control them (others get ``NotFound`` for executions,
``Forbidden`` for flows they can see exist but do not own).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from chaingraph_executor.domain.events import ExecutionEvent, created_event
from chaingraph_executor.domain.execution import (
    Execution,
    ExecutionOptions,
    ExecutionStatus,
    ExternalEvent,
)
from chaingraph_executor.domain.ids import new_execution_id
from chaingraph_executor.errors import (
    ExecutionNotFound,
    FlowNotFound,
    Forbidden,
    InvalidInput,
    InvalidState,
)
from chaingraph_executor.ports import Control, InTransaction, RootExecution, TreeNode
from chaingraph_executor.services.orchestration import NOT_TERMINAL, Ports, fail_before_run

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    is_admin: bool = False


class Dispatcher(Protocol):
    """How the service reaches the durable workflows."""

    async def enqueue(self, execution_id: str, depth: int = 0) -> None:
        """Start the durable workflow of an execution (depth 0: a root, which waits for START)."""

    def enqueue_step(self, execution_id: str, depth: int = 0) -> InTransaction | None:
        """The enqueue as a step of the execution store's transaction, when the durable workflows
        live in the same database as the stores; ``None`` when it has to be a call of its own."""

    async def cancel(self, execution_id: str, *, settle_s: float = 0.0) -> None:
        """Cancel the durable workflow (with ``settle_s``: unless it returns by itself by then)."""


class ExecutionService:
    def __init__(self, ports: Ports, dispatcher: Dispatcher, *, stop_wait_s: float = 3.0) -> None:
        self.ports = ports
        self.dispatcher = dispatcher
        self.stop_wait_s = stop_wait_s

    # -- access ---------------------------------------------------------------------------
    async def _owned_flow(self, principal: Principal, flow_id: str) -> Any:
        stored = await self.ports.flows.get(flow_id)
        if stored is None:
            raise FlowNotFound(f"Flow with id {flow_id} not found")
        if not principal.is_admin and stored.owner_id != principal.user_id:
            raise Forbidden("User does not own the flow")
        return stored

    async def _execution(self, principal: Principal, execution_id: str) -> Execution:
        ex = await self.ports.executions.get(execution_id)
        if ex is None or (not principal.is_admin and ex.owner_id != principal.user_id):
            raise ExecutionNotFound(f"Execution {execution_id} not found")
        return ex

    # -- commands -------------------------------------------------------------------------
    async def create(
        self,
        principal: Principal,
        flow_id: str,
        *,
        options: ExecutionOptions | None = None,
        integration: dict[str, Any] | None = None,
        events: list[ExternalEvent] | None = None,
    ) -> str:
        stored = await self._owned_flow(principal, flow_id)
        opts = options or ExecutionOptions()
        unknown = [b for b in opts.breakpoints if stored.flow.node(b) is None]
        if unknown:
            raise InvalidInput(
                f"options.breakpoints: unknown node id(s) {', '.join(unknown)}", path="options"
            )
        execution_id = new_execution_id()
        now = datetime.now(UTC)
        ex = Execution(
            id=execution_id,
            flow_id=flow_id,
            owner_id=stored.owner_id,
            status=ExecutionStatus.CREATED,
            created_at=now,
            updated_at=now,
            root_execution_id=execution_id,
            options=opts.model_dump(mode="json", by_alias=True),
            integration=integration or {},
            external_events=[e.model_dump(mode="json", by_alias=True) for e in events or []],
            flow_version=stored.version,
        )
        created = created_event(
            execution_id=execution_id,
            flow_id=flow_id,
            flow_metadata=stored.flow.metadata.model_dump(mode="json", by_alias=True, exclude_none=True)
            | {"id": flow_id},
            owner_id=stored.owner_id,
            root_execution_id=execution_id,
            parent_execution_id=None,
            execution_depth=0,
        )
        # The row and the durable workflow in one transaction where they share a database: no
        # row can be left without its workflow, whatever happens to this process.
        step = self.dispatcher.enqueue_step(execution_id)
        waiting = Control(state="wait", breakpoints=tuple(dict.fromkeys(opts.breakpoints)))
        await self.ports.executions.create(ex, created, also=step, control=waiting)
        if step is not None:
            return execution_id
        try:
            await self.dispatcher.enqueue(execution_id)
        except Exception:
            log.exception("enqueue failed", extra={"action": "enqueue_failed", "execution_id": execution_id})
            await fail_before_run(self.ports, ex, "Failed to start execution workflow")
            raise
        return execution_id

    async def start(self, principal: Principal, execution_id: str) -> None:
        # START is durable in the control state (wait -> run) and wakes the waiting workflow: one
        # statement that also checks the owner, the status and that it is a root
        owner = None if principal.is_admin else principal.user_id
        if await self.ports.executions.start(execution_id, owner_id=owner):
            return
        ex = await self._execution(principal, execution_id)  # why not: say so
        if ex.status is not ExecutionStatus.CREATED:
            raise InvalidState(
                f"Cannot start execution in status {ex.status.value}. Execution must be in 'created' status."
            )
        if not ex.is_root:
            raise InvalidState("Child executions start by themselves")
        # a created root that no longer waits: started already (not yet taken by a worker), or
        # stopping; a repeated start changes nothing

    async def stop(self, principal: Principal, execution_id: str, reason: str | None = None) -> None:
        ex = await self._execution(principal, execution_id)
        if ex.status.terminal:
            raise InvalidState(f"Cannot stop execution in status {ex.status.value}")
        reason = reason or "User requested stop"
        await self._stop_tree(ex, reason)

    async def _stop_tree(self, ex: Execution, reason: str) -> None:
        # Descendants first gets the stop flag, so nothing new starts below while we wait.
        targets = [ex]
        if ex.is_root:
            targets += [n.execution for n in await self.ports.executions.tree(ex.id) if n.id != ex.id]
        else:
            targets += await self._descendants(ex.id)
        for target in targets:
            if target.status.terminal:
                continue
            await self.ports.executions.update_control(target.id, state="stop", reason=reason)
            if target.status is ExecutionStatus.CREATED and await fail_before_run(
                self.ports,
                target,
                reason,
                status=ExecutionStatus.STOPPED,
                expected=frozenset({ExecutionStatus.CREATED}),
            ):
                # The stop state has woken the workflow waiting for START; cancel it too.
                await self._quietly(self.dispatcher.cancel(target.id))
        # The workers write the terminal states (flow:cancelled) as soon as their engines stop.
        deadline = time.monotonic() + self.stop_wait_s
        for target in targets:
            await self._wait_terminal(target.id, max(0.0, deadline - time.monotonic()))
        for target in targets:
            # Then the durable workflows are cancelled too (a finished one is left as it is), and
            # anything a dead or stuck worker did not end in time is recorded as stopped here.
            ended = await self.ports.executions.get(target.id)
            settle = 1.0 if ended is not None and ended.status.terminal else 0.0
            await self._quietly(self.dispatcher.cancel(target.id, settle_s=settle))
            current = await self.ports.executions.get(target.id)
            if current is not None and not current.status.terminal:
                await fail_before_run(self.ports, current, reason, status=ExecutionStatus.STOPPED)

    async def _descendants(self, execution_id: str) -> list[Execution]:
        out: list[Execution] = []
        frontier = [execution_id]
        while frontier:
            nxt = []
            for pid in frontier:
                kids = await self.ports.executions.children(pid)
                out += kids
                nxt += [k.id for k in kids]
            frontier = nxt
        return out

    async def _wait_terminal(self, execution_id: str, timeout_s: float) -> Execution | None:
        deadline = time.monotonic() + timeout_s
        delay = 0.002
        while True:
            ex = await self.ports.executions.get(execution_id)
            if ex is None or ex.status.terminal or time.monotonic() >= deadline:
                return ex
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    @staticmethod
    async def _quietly(awaitable: Any) -> None:
        try:
            await awaitable
        except Exception:
            log.warning("best-effort workflow call failed", exc_info=True)

    async def pause(self, principal: Principal, execution_id: str, reason: str | None = None) -> None:
        ex = await self._execution(principal, execution_id)
        if ex.status is not ExecutionStatus.RUNNING:
            raise InvalidState(f"Cannot pause execution in status {ex.status.value}")
        await self.ports.executions.update_control(
            execution_id, state="pause", reason=reason or "User requested pause"
        )

    async def resume(self, principal: Principal, execution_id: str) -> None:
        """Resume a paused execution — also while it runs the node(s) of a ``step``: it is paused
        between steps, so "step, then resume" works however quickly the two calls follow."""
        ex = await self._execution(principal, execution_id)
        stepping = ex.status is ExecutionStatus.RUNNING and (
            (await self.ports.executions.get_control(execution_id)).state == "pause"
        )
        if ex.status is not ExecutionStatus.PAUSED and not stepping:
            raise InvalidState(f"Cannot resume execution in status {ex.status.value}")
        await self.ports.executions.update_control(execution_id, state="run", reason=None)

    async def step(self, principal: Principal, execution_id: str) -> None:
        ex = await self._execution(principal, execution_id)
        if ex.status is not ExecutionStatus.PAUSED:
            raise InvalidState(f"Cannot step execution in status {ex.status.value}; pause it first")
        await self.ports.executions.update_control(execution_id, bump_step=True)

    async def set_breakpoints(self, principal: Principal, execution_id: str, node_ids: list[str]) -> None:
        ex = await self._execution(principal, execution_id)
        if ex.status.terminal:
            raise InvalidState(f"Cannot set breakpoints on execution in status {ex.status.value}")
        stored = await self.ports.flows.get(ex.flow_id, ex.flow_version)
        if stored is not None:
            unknown = [n for n in node_ids if stored.flow.node(n) is None]
            if unknown:
                raise InvalidInput(f"nodeIds: unknown node id(s) {', '.join(unknown)}", path="nodeIds")
        await self.ports.executions.update_control(execution_id, breakpoints=tuple(dict.fromkeys(node_ids)))

    # -- queries --------------------------------------------------------------------------
    async def details(self, principal: Principal, execution_id: str) -> Execution:
        return await self._execution(principal, execution_id)

    async def tree(self, principal: Principal, execution_id: str) -> list[TreeNode]:
        ex = await self._execution(principal, execution_id)
        if not ex.is_root:
            raise ExecutionNotFound(
                f"Execution tree with root id {execution_id} not found "
                f"(it is a child; its root is {ex.root_execution_id})"
            )
        return await self.ports.executions.tree(execution_id)

    async def roots(
        self,
        principal: Principal,
        flow_id: str,
        *,
        limit: int = 50,
        after: datetime | None = None,
        after_id: str | None = None,
    ) -> list[RootExecution]:
        await self._owned_flow(principal, flow_id)
        return await self.ports.executions.list_roots(flow_id, limit=limit, after=after, after_id=after_id)

    @asynccontextmanager
    async def subscribe(
        self,
        principal: Principal,
        execution_id: str,
        *,
        from_index: int = 0,
        event_types: list[str] | None = None,
        batch_size: int = 100,
        batch_timeout_ms: int = 25,
    ) -> AsyncIterator[AsyncIterator[list[ExecutionEvent]]]:
        """``from_index`` is a stream position (``seq``): 0 starts at ``execution:created``."""
        await self._execution(principal, execution_id)
        types = frozenset(event_types) if event_types else None
        async with self.ports.events.subscribe(
            execution_id,
            max(0, from_index),
            types=types,
            batch_size=batch_size,
            batch_timeout_ms=batch_timeout_ms,
        ) as batches:
            yield batches


__all__ = ["NOT_TERMINAL", "Dispatcher", "ExecutionService", "Principal"]
