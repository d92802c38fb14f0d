"""The durable execution workflow and its steps (the only module that defines DBOS functions).

One workflow per execution, id = execution id, on one queue with a high per-worker limit. A root
waits for START inside its ``executeFlowAtomic`` step: START is the durable control state
``wait → run`` with a push wake-up (docs/adr/0009), so waiting does not count against the
worker's flow limit, an in-process semaphore taken only once the flow is about to run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from dbos import DBOS

from chaingraph_executor.services import orchestration as orch

log = logging.getLogger(__name__)

WORKFLOW_NAME = "chaingraph_execution"
QUEUE_NAME = "chaingraph-executions"


@dataclass
class WorkerContext:
    ports: orch.Ports
    start_timeout_s: float
    flow_slots: asyncio.Semaphore
    spawn: orch.ChildSpawner
    cache: orch.FlowCache = field(default_factory=orch.FlowCache)


_context: WorkerContext | None = None


def install(context: WorkerContext | None) -> None:
    """Give the workflow functions the services of this process (None on shutdown)."""
    global _context
    _context = context


def ctx() -> WorkerContext:
    if _context is None:
        raise RuntimeError("the execution workflows run only in a worker (no worker context installed)")
    return _context


@DBOS.step(name="failBeforeRun")
async def fail_step(execution_id: str, message: str) -> bool:
    ex = await ctx().ports.executions.get(execution_id)
    if ex is None:
        return False
    return await orch.fail_before_run(ctx().ports, ex, message)


@DBOS.step(name="executeFlowAtomic")
async def run_step(execution_id: str, depth: int = 0) -> dict[str, Any]:
    """A root waits here for START (without a flow slot), then the flow runs in a slot; see
    :func:`orchestration.execute`."""
    c = ctx()
    try:
        return await orch.execute(
            c.ports,
            execution_id,
            wait_for_start=depth == 0,
            start_timeout_s=c.start_timeout_s,
            slots=c.flow_slots,
            cache=c.cache,
            spawn=c.spawn,
        )
    except Exception as exc:
        log.exception("flow step failed", extra={"action": "flow_step_failed", "execution_id": execution_id})
        return {"error": f"internal error: {exc}"}


@DBOS.step(name="childSettled")
async def child_event_step(parent_id: str, child_id: str, event_name: str, index: int) -> None:
    ports = ctx().ports
    doc = await orch.child_settled_event(ports, parent_id, child_id, event_name, index)
    await orch.append_idempotent(ports, parent_id, [orch.event_from_json(doc)])


@DBOS.step(name="updateToFinished")
async def finish_step(execution_id: str, outcome: dict[str, Any], index: int) -> str:
    return await orch.finish(ctx().ports, execution_id, outcome, index)


@DBOS.workflow(name=WORKFLOW_NAME)
async def execution_workflow(execution_id: str, depth: int = 0) -> dict[str, Any]:
    """Root executions (depth 0) wait for START inside the flow step; children start at once.
    Checkpoints: one step for the flow, and only for parents one step per child plus the finish."""
    max_depth = ctx().ports.max_depth
    if depth > max_depth:
        await fail_step(execution_id, orch.depth_exceeded_message(depth, max_depth))
        return {"status": "failed"}
    outcome = await run_step(execution_id, depth)
    if outcome.get("skipped"):
        return {"status": "skipped"}
    if "finished" in outcome:
        return {"status": outcome["finished"]}
    if "error" in outcome:
        await fail_step(execution_id, outcome["error"])
        return {"status": "failed"}
    index = int(outcome["next_index"])
    for child in outcome["children"]:
        try:
            handle: Any = await DBOS.retrieve_workflow_async(child["id"])
            await handle.get_result()
        except Exception:
            log.warning("child workflow ended abnormally", exc_info=True)
        await child_event_step(execution_id, child["id"], child["eventName"], index)
        index += 1
    status = await finish_step(execution_id, outcome, index)
    return {"status": status}
