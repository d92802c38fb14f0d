"""Rules every storage backend applies the same way: the status compare-and-set filter, the
execution tree walk, control-channel merges and flow-list cursors."""

from __future__ import annotations

import base64
import binascii
import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from chaingraph_executor.domain.execution import ALLOWED_TRANSITIONS, Execution, ExecutionStatus
from chaingraph_executor.errors import InvalidInput
from chaingraph_executor.ports import Control, StatusChange, TreeNode

CONTROL_STATES = frozenset({"run", "pause", "stop"})
CONTROL_KEYS = frozenset({"state", "reason", "breakpoints", "step_seq", "bump_step"})


def as_utc(value: datetime) -> datetime:
    """Timezone-aware UTC; a naive value is taken to be UTC already (SQLite returns naive values)."""
    tz = value.tzinfo
    if tz is UTC:
        return value
    if tz is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def allowed_sources(change: StatusChange) -> frozenset[ExecutionStatus]:
    """The statuses a change may really start from: what the caller expects, narrowed to the
    statuses that allow the target (so a terminal status is never overwritten)."""
    return frozenset(s for s in change.expected if change.status in ALLOWED_TRANSITIONS[s])


def build_tree(root_execution_id: str, executions: Iterable[Execution]) -> list[TreeNode]:
    """Walk from the root: ``level`` is the distance from it, rows it cannot reach are dropped,
    the result is ordered by level then id."""
    by_id: dict[str, Execution] = {}
    children: dict[str, list[Execution]] = {}
    for execution in executions:
        by_id[execution.id] = execution
        if execution.parent_execution_id is not None:
            children.setdefault(execution.parent_execution_id, []).append(execution)
    root = by_id.get(root_execution_id)
    if root is None:
        return []
    nodes = [TreeNode(id=root.id, parent_id=None, level=0, execution=root)]
    seen = {root.id}
    queue: deque[tuple[str, int]] = deque([(root.id, 0)])
    while queue:
        parent_id, level = queue.popleft()
        for child in children.get(parent_id, ()):
            if child.id in seen:
                continue
            seen.add(child.id)
            nodes.append(TreeNode(id=child.id, parent_id=parent_id, level=level + 1, execution=child))
            queue.append((child.id, level + 1))
    nodes.sort(key=lambda node: (node.level, node.id))
    return nodes


def merge_control(current: Control, changes: Mapping[str, Any]) -> Control:
    """Apply ``update_control`` changes and bump ``version``.

    Keys: ``state`` (run | pause | stop; ``wait`` is only ever an initial state), ``reason``,
    ``breakpoints`` (node ids), ``step_seq`` (set) and ``bump_step=True`` (increment ``step_seq``
    atomically). ``stop`` is final: once stopping,
    a ``state`` other than stop (and the ``reason`` that comes with it) is ignored.
    """
    unknown = set(changes) - CONTROL_KEYS
    if unknown:
        raise InvalidInput(f"unknown control field(s): {', '.join(sorted(unknown))}")
    new = current
    state = changes.get("state", current.state)
    if "state" in changes and state not in CONTROL_STATES:
        raise InvalidInput(f"control state must be one of run, pause, stop (got {state!r})", path="state")
    stopping = current.state == "stop" and state != "stop"
    if stopping:
        # stop is final: a late run/pause (say, a pause the engine took racing a stop) changes
        # neither the state nor the stop's reason
        changes = {k: v for k, v in changes.items() if k not in ("state", "reason")}
    elif "state" in changes:
        new = replace(new, state=state)
    if "reason" in changes:
        reason = changes["reason"]
        new = replace(new, reason=None if reason is None else str(reason))
    if "breakpoints" in changes:
        raw = changes["breakpoints"] or ()
        if isinstance(raw, str):
            raise InvalidInput("breakpoints must be a list of node ids", path="breakpoints")
        new = replace(new, breakpoints=tuple(dict.fromkeys(str(b) for b in raw)))
    if "step_seq" in changes:
        new = replace(new, step_seq=int(changes["step_seq"]))
    if changes.get("bump_step"):
        new = replace(new, step_seq=new.step_seq + 1)
    return replace(new, version=current.version + 1)


def encode_cursor(updated_at: datetime, item_id: str) -> str:
    """An opaque keyset cursor for flow listings."""
    raw = json.dumps([updated_at.isoformat(), item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, item_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(stamp), str(item_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidInput("invalid cursor", path="cursor") from exc
