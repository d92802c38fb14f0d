"""Durable-execution benchmark: the embedded mode (one process, SQLite) and an API process with two
worker processes on PostgreSQL, next to a bare DBOS one-step workflow measured in the same run.

Prints, per setup:
- start → ``flow:started`` latency as seen by a subscriber (p50 / p99),
- pause → ``flow:paused`` and stop → ``flow:cancelled`` latency (p50 / p99),
- events per second from the engine to a subscriber (a 3,000-node chain),
- executions per second for a one-node flow (create + start + wait for the terminal event).

Usage: python scripts/bench_durable.py [--only embedded|cluster] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
from dbos import DBOS

from chaingraph_executor.bootstrap import Services, build_services
from chaingraph_executor.serve import freeze_startup_heap
from chaingraph_executor.services.auth import DEV_PRINCIPAL as P
from chaingraph_executor.settings import Settings

BIN = Path(sys.executable).parent / "chaingraph"


@DBOS.step()
async def bare_step(x: int) -> int:
    return x + 1


@DBOS.workflow()
async def bare_workflow(x: int) -> int:
    return await bare_step(x)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fmt(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5):7.1f} ms   p99 {pct(values, 0.99):7.1f} ms   (n={len(values)})"


def node(id_: str, type_: str, **inputs: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "inputs": inputs}


def chain(flow_id: str, n: int, type_: str, out: str, into: str, **inputs: Any) -> dict[str, Any]:
    nodes = [node(f"n{i}", type_, **inputs) for i in range(n)]
    edges = [
        {
            "id": f"e{i}",
            "sourceNodeId": f"n{i}",
            "sourcePortId": out,
            "targetNodeId": f"n{i + 1}",
            "targetPortId": into,
        }
        for i in range(n - 1)
    ]
    return {"id": flow_id, "nodes": nodes, "edges": edges}


FLOWS = [
    {"id": "one", "nodes": [node("a", "math.add", a=1, b=2)], "edges": []},
    chain("events", 3000, "math.add", "result", "a", b=1),
    chain("ticks", 400, "flow.sleep", "out", "value", ms=5),
    {"id": "long", "nodes": [node("s", "flow.sleep", ms=60_000)], "edges": []},
]


async def until(
    sv: Services, eid: str, wanted: str, *, start: Callable[[], Awaitable[None]] | None = None
) -> float:
    """Subscribe, call ``start`` (if any), return ms from the call until ``wanted`` arrives (the
    event may arrive before the call has returned: stop, for one, also tidies up afterwards)."""
    async with sv.executions.subscribe(P, eid, batch_timeout_ms=0, batch_size=1000) as batches:
        t0 = time.perf_counter()
        call = asyncio.ensure_future(start()) if start is not None else None
        try:
            async for batch in batches:
                if any(e.type == wanted for e in batch):
                    return (time.perf_counter() - t0) * 1000
        finally:
            if call is not None:
                await call
    raise RuntimeError(f"{wanted} never arrived for {eid}")


async def start_latency(sv: Services, n: int) -> list[float]:
    out = []
    for _ in range(n):
        eid = await sv.executions.create(P, "one")
        await asyncio.sleep(0.08)  # let a worker pick the workflow up: it now waits for START
        out.append(await until(sv, eid, "flow:started", start=lambda eid=eid: sv.executions.start(P, eid)))
        await until(sv, eid, "flow:completed")
    return out


async def pause_latency(sv: Services, cycles: int) -> list[float]:
    eid = await sv.executions.create(P, "ticks")
    await sv.executions.start(P, eid)
    await until(sv, eid, "node:completed")
    out = []
    for _ in range(cycles):
        out.append(await until(sv, eid, "flow:paused", start=lambda: sv.executions.pause(P, eid)))
        # wait for the status row, then resume
        while (await sv.executions.details(P, eid)).status.value != "paused":
            await asyncio.sleep(0.001)
        await sv.executions.resume(P, eid)
        await asyncio.sleep(0.03)
    await sv.executions.stop(P, eid)
    return out


async def stop_latency(sv: Services, n: int) -> list[float]:
    out = []
    for _ in range(n):
        eid = await sv.executions.create(P, "long")
        await sv.executions.start(P, eid)
        async with sv.executions.subscribe(P, eid, batch_timeout_ms=0) as batches:
            async for batch in batches:
                if any(e.type == "node:started" for e in batch):
                    break
        out.append(await until(sv, eid, "flow:cancelled", start=lambda eid=eid: sv.executions.stop(P, eid)))
    return out


async def events_per_second(sv: Services, runs: int = 3) -> tuple[int, float]:
    """Events per second through the pipeline engine -> event log -> subscriber: from the arrival
    of ``flow:started`` (the engine is running; the flow was loaded and compiled before it) to the
    arrival of the terminal event. The median of ``runs`` runs of the 3,000-node chain."""
    rates = []
    count = 0
    for _ in range(runs):
        eid = await sv.executions.create(P, "events")
        await asyncio.sleep(0.08)
        count = 0
        t0 = 0.0
        async with sv.executions.subscribe(P, eid, batch_size=1000, batch_timeout_ms=5) as batches:
            await sv.executions.start(P, eid)
            async for batch in batches:
                for e in batch:
                    if e.type == "flow:started":
                        t0 = time.perf_counter()
                    elif t0:
                        count += 1
            elapsed = time.perf_counter() - t0
        rates.append(count / elapsed)
    return count, pct(rates, 0.5)


async def executions_per_second(sv: Services, n: int, concurrency: int = 64) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            eid = await sv.executions.create(P, "one")
            await until(sv, eid, "flow:completed", start=lambda: sv.executions.start(P, eid))

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - t0)


async def bare_dbos(n: int) -> tuple[list[float], float]:
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        handle = await DBOS.start_workflow_async(bare_workflow, i)
        await handle.get_result()
        lat.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    handles = await asyncio.gather(*(DBOS.start_workflow_async(bare_workflow, i) for i in range(n)))
    await asyncio.gather(*(h.get_result() for h in handles))
    return lat, n / (time.perf_counter() - t0)


async def measure(sv: Services, label: str) -> None:
    for flow in FLOWS:
        await sv.flows.upload(P, flow)
    freeze_startup_heap()  # as `chaingraph serve|api|worker` do once they listen
    await start_latency(sv, 3)  # warm-up: compile caches, connections
    print(f"\n== {label}")
    print(f"start -> flow:started     {fmt(await start_latency(sv, 40))}")
    print(f"pause -> flow:paused      {fmt(await pause_latency(sv, 15))}")
    print(f"stop  -> flow:cancelled   {fmt(await stop_latency(sv, 10))}")
    count, rate = await events_per_second(sv)
    print(f"events engine->subscriber {rate:10,.0f} events/s  ({count} events, median of 3)")
    print(f"executions (one node)     {await executions_per_second(sv, 200):10,.1f} executions/s  (n=200)")


async def embedded() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), shutdown_grace_s=0, worker_concurrency=64)
        async with build_services(settings, "embedded") as sv:
            await measure(sv, "embedded (one process, SQLite)")
            lat, rate = await bare_dbos(100)
            print(f"bare DBOS one-step wf     {fmt(lat)}   {rate:,.0f} workflows/s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def cluster(admin_url: str) -> None:
    db = "chaingraph_bench"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{db}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CHAINGRAPH_")},
        "CHAINGRAPH_DATABASE_URL": url,
        "CHAINGRAPH_SHUTDOWN_GRACE_S": "0",
    }
    procs = []
    try:
        for i in (1, 2):
            port = free_port()
            p = subprocess.Popen(
                [
                    str(BIN),
                    "worker",
                    "--port",
                    str(port),
                    "--executor-id",
                    f"bench-w{i}",
                    "--concurrency",
                    "64",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(p)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
        settings = Settings(database_url=url, mode="api", dev_auth=True)
        async with build_services(settings, "api") as sv:
            await measure(sv, "API process + 2 worker processes (PostgreSQL)")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    # the bare DBOS workflow, launched in this process against the same PostgreSQL
    DBOS(
        config={
            "name": "chaingraph-bench",
            "system_database_url": url,
            "application_version": "bench",
            "executor_id": "bench",
            "log_level": "WARNING",
        }
    )
    DBOS.launch()
    try:
        lat, rate = await bare_dbos(100)
        print(f"bare DBOS one-step wf     {fmt(lat)}   {rate:,.0f} workflows/s")
    finally:
        DBOS.destroy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["embedded", "cluster"])
    parser.add_argument(
        "--pg", default=os.environ.get("CHAINGRAPH_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    args = parser.parse_args()
    print("targets: start p50 <= 5 ms embedded / <= 15 ms (p99 50 ms) PostgreSQL; pause, stop p50 <= 20 ms;")
    print("         events >= 30,000/s embedded / >= 50,000/s PostgreSQL; >= 100 executions/s with 2 workers")
    if args.only in (None, "embedded"):
        asyncio.run(embedded())
    if args.only in (None, "cluster"):
        asyncio.run(cluster(args.pg))


if __name__ == "__main__":
    main()
