"""The REAL ``@trpc/client`` (Node) drives the execution router of a running ``chaingraph serve``.

Two servers, each in its own data directory on a free port: the embedded default (dev auth, every
caller is an admin) and one with dev auth off whose three users (owner, other, admin) come from
``chaingraph users add``. ``scenarios/executions.mjs`` runs every scenario (upload, create, WS and
SSE subscriptions, start, pause/resume/stop, step and breakpoints, errors, batching, reads, dropped
connections that resume from ``lastEventId``, the README snippet, tokens and ownership) and prints
one JSON line per scenario.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.compat, pytest.mark.xdist_group("compat"), pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT / "tests" / "compat"
SCENARIOS = COMPAT / "scenarios" / "executions.mjs"
CHAINGRAPH = [sys.executable, "-m", "chaingraph_executor"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINGRAPH_")}
    return {**env, "CHAINGRAPH_DATA_DIR": str(data_dir), "CHAINGRAPH_LOG_LEVEL": "WARNING", **extra}


def _add_user(data_dir: Path, name: str, *, admin: bool = False) -> str:
    out = subprocess.run(
        [*CHAINGRAPH, "users", "add", name, *(["--admin"] if admin else [])],
        cwd=data_dir,
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"chaingraph users add {name} failed:\n{out.stdout}\n{out.stderr}"
    found = re.search(r"^token: (\S+)$", out.stdout, re.MULTILINE)
    assert found, f"no token printed by `chaingraph users add`:\n{out.stdout}"
    return found.group(1)


@contextmanager
def _serve(data_dir: Path, **env: str) -> Iterator[tuple[str, Path]]:
    """``chaingraph serve`` on a free port; yields its base URL and its log file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*CHAINGRAPH, "serve", "--port", str(port)],
            cwd=data_dir,
            env=_env(data_dir, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    pytest.fail(
                        f"chaingraph serve exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}"
                    )
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"chaingraph serve did not answer /health:\n{log_path.read_text(errors='replace')}"
                    )
                time.sleep(0.1)
            yield url, log_path
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _node() -> str:
    if not (COMPAT / "node_modules" / "@trpc" / "client").is_dir():
        pytest.fail(
            "tests/compat/node_modules is missing: run `cd tests/compat && npm ci` (`make test` does it)",
            pytrace=False,
        )
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (>= 20) is not on PATH; it runs the real @trpc/client", pytrace=False)
    return node


EXPECTED = {
    "health-ready",
    "upload-flow-versions",
    "ws-run-every-event",
    "sse-run-every-event",
    "subscribe-options",
    "pause-resume-stop",
    "step-and-breakpoints",
    "breakpoint-right-after-start",
    "errors",
    "batching-httpBatchLink",
    "batching-httpBatchStreamLink",
    "details-tree-roots-dates",
    "ws-drop-resume",
    "sse-drop-resume",
    "readme-snippet",
    "auth-http-tokens",
    "auth-ownership-ws-sse",
    "auth-readme-snippet-with-token",
}


@dataclass
class Run:
    results: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    report: str


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Both servers, then every scenario once (the tests below read its results)."""
    node = _node()
    tmp_path = tmp_path_factory.mktemp("execution-router")
    auth_dir = tmp_path / "auth"
    auth_dir.mkdir()
    tokens = {
        "token": _add_user(auth_dir, "owner"),
        "other-token": _add_user(auth_dir, "other"),
        "admin-token": _add_user(auth_dir, "boss", admin=True),
    }
    with (
        _serve(tmp_path / "dev") as (url, log),
        _serve(auth_dir, CHAINGRAPH_DEV_AUTH="false") as (auth_url, auth_log),
    ):
        run = subprocess.run(
            [
                node,
                str(SCENARIOS),
                *("--url", url, "--auth-url", auth_url),
                *(arg for name, token in tokens.items() for arg in (f"--{name}", token)),
            ],
            cwd=COMPAT,
            capture_output=True,
            text=True,
            timeout=150,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        server_logs = (
            f"--- dev server log ---\n{log.read_text(errors='replace')[-4000:]}\n"
            f"--- auth server log ---\n{auth_log.read_text(errors='replace')[-4000:]}"
        )
    print(run.stdout)
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    report = f"exit code {run.returncode}\n{run.stdout}\n--- stderr ---\n{run.stderr[-4000:]}\n{server_logs}"
    assert lines and lines[-1].get("summary"), f"the scenario script did not finish:\n{report}"
    results = {r["scenario"]: r for r in lines if "scenario" in r}
    return Run(results, lines[-1], report)


@pytest.mark.timeout(180)
def test_real_trpc_client_drives_the_execution_router(scenarios: Run) -> None:
    missing = EXPECTED - scenarios.results.keys()
    assert not missing, f"scenarios missing: {sorted(missing)}\n{scenarios.report}"
    failed = sorted(n for n, r in scenarios.results.items() if not r["ok"])
    assert not failed, f"scenarios failed: {failed}\n{scenarios.report}"
    assert scenarios.summary["total"] == len(scenarios.results)
