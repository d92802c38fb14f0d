"""The REAL ``@trpc/client`` (Node) against our tRPC server: every MUST scenario must pass.

Starts ``tests/compat/trpc_test_app.py`` (the spec's test router on /trpc, /plain, /dev) with
uvicorn on a free port, plus a second instance with the keep-alives on (for the
``ws-server-keepalive`` / ``sse-server-ping`` scenarios), runs ``harness/capture.mjs`` through its
logging proxy, then ``harness/compare.py`` against the captured reference vectors in
``tests/fixtures/trpc_vectors``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = [pytest.mark.compat, pytest.mark.xdist_group("compat")]

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT / "tests" / "compat"
HARNESS = COMPAT / "harness"
VECTORS = ROOT / "tests" / "fixtures" / "trpc_vectors"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"test app exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"test app did not listen on port {port} within {deadline_s}s")


@contextmanager
def _serve(log_path: Path, *flags: str) -> Iterator[str]:
    port = _free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(COMPAT / "trpc_test_app.py"), str(port), *flags],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_port(port, proc, 20)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def app_urls(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with _serve(tmp_path / "app.log") as url, _serve(tmp_path / "app-keepalive.log", "--keepalive") as url2:
        yield url, url2


@pytest.mark.timeout(420)
def test_real_trpc_client_passes_every_must_scenario(app_urls: tuple[str, str], tmp_path: Path) -> None:
    if not (COMPAT / "node_modules" / "@trpc" / "client").is_dir():
        pytest.fail(
            "tests/compat/node_modules is missing: run `cd tests/compat && npm ci` (`make test` does it)",
            pytrace=False,
        )
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (>= 20) is not on PATH; it runs the real @trpc/client", pytrace=False)
    observed = tmp_path / "observed"
    capture = subprocess.run(
        [
            node,
            str(HARNESS / "capture.mjs"),
            *("--target", app_urls[0], "--keepalive-target", app_urls[1]),
            *("--out", str(observed)),
        ],
        cwd=COMPAT,
        capture_output=True,
        text=True,
        timeout=360,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    assert capture.returncode == 0, f"capture.mjs failed:\n{capture.stdout[-4000:]}\n{capture.stderr[-4000:]}"
    compare = subprocess.run(
        [sys.executable, str(HARNESS / "compare.py"), str(VECTORS), str(observed), "-v"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = compare.stdout + compare.stderr
    app_log = (tmp_path / "app.log").read_text(errors="replace")
    assert compare.returncode == 0, f"MUST scenarios failed:\n{report}\n--- app log ---\n{app_log[-4000:]}"
    summary = report.strip().splitlines()[-1]
    assert "MUST/FAIL" not in summary and "MUST/MISSING" not in summary, report
    print(summary)
    if "SHOULD/FAIL" in summary or "SHOULD/MISSING" in summary:  # reported, not fatal (MUST is)
        warnings.warn(f"tRPC harness SHOULD scenarios differ from the reference:\n{report}", stacklevel=1)
