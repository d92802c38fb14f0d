"""The in-memory control of one run: pause, resume, step, breakpoints and stop.

Commands may arrive at any time from the same event loop; the engine reacts at node
boundaries (a paused engine starts no new node; in-flight nodes finish first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


class ExecutionControl:
    def __init__(self, breakpoints: Iterable[str] = ()) -> None:
        self.breakpoints: set[str] = set(breakpoints)
        self.pause_reason: str | None = None
        self.stop_reason: str | None = None
        self.step_requests = 0
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _changed(self) -> None:
        for callback in self._listeners:
            callback()

    @property
    def pause_requested(self) -> bool:
        return self.pause_reason is not None

    def pause(self, reason: str = "User requested pause") -> None:
        if self.pause_reason is None:
            self.pause_reason = reason
            self._changed()

    def resume(self) -> None:
        if self.pause_reason is not None or self.step_requests:
            self.pause_reason = None
            self.step_requests = 0
            self._changed()

    def step(self) -> None:
        """While paused: run the nodes that are ready now, then pause again.
        While running: pause (the next ``step`` then runs one step)."""
        if self.pause_reason is None:
            self.pause_reason = "step"
        else:
            self.step_requests += 1
        self._changed()

    def stop(self, reason: str = "User requested stop") -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self._changed()

    def set_breakpoints(self, node_ids: Iterable[str]) -> None:
        self.breakpoints = set(node_ids)
        self._changed()
