"""Engine benchmark: cost per node (including event creation) and events per second for a
10,000-node chain and a 1,000-wide fan-out. Target: under 100 µs per node."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from chaingraph_executor.domain.events import ExecutionEvent
from chaingraph_executor.domain.execution import ExecutionInfo, ExecutionOptions
from chaingraph_executor.domain.flow import parse_flow
from chaingraph_executor.engine.graph import compile_flow
from chaingraph_executor.engine.library import builtin_registry
from chaingraph_executor.engine.runner import FlowEngine


def chain(n: int) -> dict[str, Any]:
    nodes = [{"id": f"n{i}", "type": "math.add", "inputs": {"b": 1}} for i in range(n)]
    edges = [
        {
            "id": f"e{i}",
            "sourceNodeId": f"n{i}",
            "sourcePortId": "result",
            "targetNodeId": f"n{i + 1}",
            "targetPortId": "a",
        }
        for i in range(n - 1)
    ]
    return {"id": "chain", "nodes": nodes, "edges": edges}


def fan_out(width: int) -> dict[str, Any]:
    nodes = [{"id": "src", "type": "value.number", "inputs": {"value": 1}}]
    nodes += [{"id": f"n{i}", "type": "math.add", "inputs": {"b": i}} for i in range(width)]
    edges = [
        {
            "id": f"e{i}",
            "sourceNodeId": "src",
            "sourcePortId": "out",
            "targetNodeId": f"n{i}",
            "targetPortId": "a",
        }
        for i in range(width)
    ]
    return {"id": "fan", "nodes": nodes, "edges": edges}


async def measure(doc: dict[str, Any], runs: int, concurrency: int = 50) -> tuple[float, float, float, int]:
    registry = builtin_registry()
    t0 = time.perf_counter()
    compiled = compile_flow(parse_flow(doc), registry)
    compile_s = time.perf_counter() - t0
    times = []
    count = 0
    for _ in range(runs):
        events: list[ExecutionEvent] = []
        engine = FlowEngine(
            compiled,
            ExecutionInfo("EXbench", doc["id"]),
            events.append,
            options=ExecutionOptions.model_validate({"execution": {"maxConcurrency": concurrency}}),
        )
        t0 = time.perf_counter()
        result = await engine.run()
        times.append(time.perf_counter() - t0)
        assert result.status == "completed", result
        count = len(events)
    return compile_s, statistics.median(times), min(times), count


async def main() -> None:
    print(f"{'scenario':<26}{'nodes':>7}{'events':>8}{'µs/node':>9}{'events/s':>11}{'compile µs/node':>17}")
    for name, doc, runs in (("chain 10,000", chain(10_000), 3), ("fan-out 1,000 wide", fan_out(1000), 5)):
        n = len(doc["nodes"])
        compile_s, median_s, _best_s, events = await measure(doc, runs)
        print(
            f"{name:<26}{n:>7}{events:>8}{median_s / n * 1e6:>9.1f}{events / median_s:>11,.0f}"
            f"{compile_s / n * 1e6:>17.1f}"
        )
    print("target: < 100 µs per node including event creation (median of runs shown)")


if __name__ == "__main__":
    asyncio.run(main())
