"""Real processes on PostgreSQL: one API process, two workers; a worker killed with SIGKILL
mid-flow; its execution completes on the other worker with a dense, duplicate-free stream that
says the run restarted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

pytestmark = [pytest.mark.acceptance, pytest.mark.postgres, pytest.mark.timeout(180)]

BIN = Path(sys.executable).parent / "chaingraph"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.fh = log.open("w")
        self.p = subprocess.Popen(args, env=env, stdout=self.fh, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
        self.fh.close()


def wait_healthy(port: int, proc: Proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            raise AssertionError(f"process exited: {proc.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not healthy: {proc.log.read_text()[-3000:]}")


def call(api: int, path: str, data: Any, *, mutation: bool = True) -> Any:
    url = f"http://127.0.0.1:{api}/trpc/{path}"
    if mutation:
        r = httpx.post(url, json={"json": data}, timeout=30)
    else:
        r = httpx.get(url, params={"input": json.dumps({"json": data})}, timeout=30)
    body = r.json()
    assert "result" in body, body
    return body["result"]["data"]["json"]


@pytest.fixture
def cluster(pg_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CHAINGRAPH_")},
        "CHAINGRAPH_DATABASE_URL": pg_url,
        "CHAINGRAPH_DEV_AUTH": "true",
        "CHAINGRAPH_HEARTBEAT_INTERVAL_S": "0.5",
        "CHAINGRAPH_WORKER_DEAD_AFTER_S": "2",
        "CHAINGRAPH_SHUTDOWN_GRACE_S": "0",
        "CHAINGRAPH_DATA_DIR": str(tmp_path),
    }
    api_port, w1_port, w2_port = free_port(), free_port(), free_port()
    procs: dict[str, Proc] = {}
    try:
        procs["w1"] = Proc(
            [str(BIN), "worker", "--port", str(w1_port), "--executor-id", "w1"], env, tmp_path / "w1.log"
        )
        wait_healthy(w1_port, procs["w1"])
        procs["w2"] = Proc(
            [str(BIN), "worker", "--port", str(w2_port), "--executor-id", "w2"], env, tmp_path / "w2.log"
        )
        procs["api"] = Proc([str(BIN), "api", "--port", str(api_port)], env, tmp_path / "api.log")
        wait_healthy(w2_port, procs["w2"])
        wait_healthy(api_port, procs["api"])
        yield {"api": api_port, "procs": procs, "pg_url": pg_url}
    finally:
        for p in procs.values():
            p.stop()


def executor_of(pg_url: str, execution_id: str) -> str | None:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT executor_id FROM dbos.workflow_status WHERE workflow_uuid = %s", (execution_id,)
        ).fetchone()
    return row[0] if row else None


def stream(pg_url: str, execution_id: str) -> list[tuple[int, str, str]]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT seq, type, data FROM chaingraph_events WHERE execution_id = %s ORDER BY seq",
            (execution_id,),
        ).fetchall()
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def status(api: int, eid: str) -> str:
    return str(call(api, "getExecutionDetails", {"executionId": eid}, mutation=False)["status"])


def test_killed_worker_execution_completes_elsewhere(cluster: dict[str, Any]) -> None:
    api, pg_url = cluster["api"], cluster["pg_url"]
    nodes = [{"id": f"s{i}", "type": "flow.sleep", "inputs": {"ms": 250}} for i in range(12)]
    edges = [
        {
            "id": f"e{i}",
            "sourceNodeId": f"s{i}",
            "sourcePortId": "out",
            "targetNodeId": f"s{i + 1}",
            "targetPortId": "value",
        }
        for i in range(11)
    ]
    assert call(api, "uploadFlow", {"flow": {"id": "slow", "nodes": nodes, "edges": edges}})["version"] == 1

    ids: list[str] = []
    executors: list[str | None] = []
    # Each worker claims what is queued when it polls, so a burst may all land on one worker
    # (docs/adr/0002): start executions in rounds until both workers have some.
    for _ in range(4):
        for _ in range(6):
            eid = call(api, "create", {"flowId": "slow"})["executionId"]
            call(api, "start", {"executionId": eid})
            ids.append(eid)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and None in (executors := [executor_of(pg_url, e) for e in ids]):
            time.sleep(0.1)
        if {"w1", "w2"} <= set(executors):
            break
    assert {"w1", "w2"} <= set(executors), f"executions did not run on both workers: {executors}"

    victim_id = ids[executors.index("w1")]
    # wait until the victim is mid-flow
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done = sum(1 for _, t, _ in stream(pg_url, victim_id) if t == "node:completed")
        if done >= 3:
            break
        time.sleep(0.05)
    cluster["procs"]["w1"].p.send_signal(signal.SIGKILL)
    cluster["procs"]["w1"].p.wait(5)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and status(api, victim_id) != "completed":
        time.sleep(0.2)
    assert status(api, victim_id) == "completed", cluster["procs"]["api"].log.read_text()[-2000:]
    assert executor_of(pg_url, victim_id) == "w2", executor_of(pg_url, victim_id)

    events = stream(pg_url, victim_id)
    seqs = [s for s, _, _ in events]
    assert seqs == list(range(len(seqs))), "stream must be dense and duplicate-free"
    types = [t for _, t, _ in events]
    assert types.count("flow:started") == 2, types
    restarted = json.loads([d for _, t, d in events if t == "flow:started"][1])
    assert restarted["restarted"] is True and restarted["attempt"] == 2
    assert (
        types[-1] == "flow:completed"
        and sum(t.startswith("flow:c") or t == "flow:failed" for t in types) == 1
    )
    for eid in ids:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and status(api, eid) != "completed":
            time.sleep(0.2)
        assert status(api, eid) == "completed"
