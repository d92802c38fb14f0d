"""The ``chaingraph`` command line as a user runs it: subprocesses, exit codes, output.

* ``chaingraph run`` on every example in ``examples/`` (in-process), ``--json``, ``--set``,
  signals (stop, pause, resume), and every bad input giving one ``error:`` line;
* ``chaingraph serve`` + ``run --server``, the ``flows`` / ``executions`` / ``users`` commands,
  ``check``, tokens, SIGTERM;
* every shell sample of ``docs/quickstart.md`` and ``docs/cli.md`` (``$ command`` lines run in
  one bash session, the lines after a command are its expected output, ``...`` matches any
  text), and the README's quickstart command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
FAST_SLEEPS = [f"--set=sleep{i}.ms=20" for i in range(1, 7)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINGRAPH_")}
    env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "120", "CHAINGRAPH_SHUTDOWN_GRACE_S": "0"})
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def workdir(path: Path) -> Path:
    """A directory like a fresh clone's root: ``examples/`` and nothing else."""
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "examples").exists():
        (path / "examples").symlink_to(EXAMPLES)
    return path


def cg(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaingraph_executor", *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cg_many(
    calls: list[tuple[list[str], Path, dict[str, str] | None]],
) -> list[subprocess.CompletedProcess[str]]:
    """Several ``chaingraph`` invocations at once (each is mostly start-up time)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(cg, *args, cwd=cwd, env=env) for args, cwd, env in calls]
        return [f.result() for f in futures]


def outputs_of(stdout: str) -> Any:
    """The JSON after ``outputs:`` at the end of a run's plain output."""
    return json.loads(stdout.split("\noutputs: ", 1)[1])


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


# ------------------------------------------------------------------------------------------ helpers
class HealthHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "healthy", "path": self.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HealthHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()


@dataclass
class Server:
    """A ``chaingraph serve`` subprocess on a free port."""

    cwd: Path
    env: dict[str, str]
    port: int
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cg(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return cg(*args, cwd=self.cwd, env=self.env, timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(cwd: Path, **env_extra: str) -> Server:
    port = free_port()
    env = clean_env(
        CHAINGRAPH_PORT=str(port),
        CHAINGRAPH_SERVER=f"http://127.0.0.1:{port}",
        CHAINGRAPH_DATA_DIR=str(cwd / "data"),
        CHAINGRAPH_HEARTBEAT_INTERVAL_S="0.5",
        **env_extra,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaingraph_executor", "serve"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(cwd, env, port, proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            server.lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("serve exited:\n" + "\n".join(server.lines))
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop()
    raise AssertionError("serve never became healthy:\n" + "\n".join(server.lines))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(workdir(tmp_path_factory.mktemp("served")))
    try:
        yield srv
    finally:
        assert srv.stop() == 0, "\n".join(srv.lines)


# ------------------------------------------------------------------------------------ every example
EXPECTED: dict[str, tuple[list[str], dict[str, Any] | None]] = {
    "hello-world": (
        ["node:debug-log-string     log  [info] Hello, World!"],
        {"log": {"out": "Hello, World!", "text": "[info] Hello, World!"}},
    ),
    "math-diamond": (['node:completed            half  {"result": 14}'], {"half": {"result": 14}}),
    "branch-error-handler": (
        ["node:failed               charge  payment service unavailable"],
        {
            "report": {
                "out": "Recovered from: payment service unavailable",
                "text": "[warn] Recovered from: payment service unavailable",
            }
        },
    ),
    "slow-flow": (["node:debug-log-string     done  [info] all sleeps done: tick"], None),
    "emitter-listeners": (["child:spawned", "child:completed", "order.shipped"], None),
    "http-call": (["[info] status: 200", '"status": "healthy"'], None),
    "streaming": (["node:completed            collect"], None),
}


def example_args(name: str, http_target: str) -> list[str]:
    args = ["run", f"examples/{name}.json"]
    if name == "slow-flow":
        args += FAST_SLEEPS
    if name == "http-call":
        args.append(f"--set=url.value={http_target}")
    return args


@pytest.fixture(scope="module")
def example_runs(
    tmp_path_factory: pytest.TempPathFactory, http_target: str
) -> dict[str, subprocess.CompletedProcess[str]]:
    names = sorted(p.stem for p in EXAMPLES.glob("*.json"))
    calls = [(example_args(n, http_target), workdir(tmp_path_factory.mktemp(n)), None) for n in names]
    return dict(zip(names, cg_many(calls), strict=True))


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.json")))
def test_run_every_example_in_process(
    name: str, example_runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    proc = example_runs[name]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    out = proc.stdout
    assert out.startswith("execution EX") and f"of flow {name} (in-process, data in .chaingraph)" in out
    assert "   -1  execution:created" in out and "    0  flow:started" in out
    assert "flow:completed" in out and "\nstatus: completed\n" in out
    assert "Traceback" not in proc.stderr and "error" not in proc.stderr.lower()
    outputs = outputs_of(out)
    snippets, expected_outputs = EXPECTED.get(name, ([], None))
    for snippet in snippets:
        assert snippet in out, f"{snippet!r} not in the output of {name}"
    if expected_outputs is not None:
        assert outputs == expected_outputs


def test_json_lines_and_nothing_else(tmp_path: Path) -> None:
    proc = cg("run", "examples/math-diamond.json", "--json", cwd=workdir(tmp_path))
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["index"] for e in events] == list(range(-1, len(events) - 1))
    assert events[0]["type"] == "execution:created" and events[-1]["type"] == "flow:completed"
    assert all(set(e) == {"index", "type", "timestamp", "data"} for e in events)
    assert events[-1]["timestamp"].endswith("Z")
    completed = [e for e in events if e["type"] == "node:completed" and e["data"]["node"]["id"] == "half"]
    assert completed[0]["data"]["outputs"] == {"result": 14}
    assert proc.stderr.startswith("execution EX")  # the header goes to stderr with --json


def test_failed_flow_exits_1_with_the_error(tmp_path: Path) -> None:
    flow = {
        "id": "fails",
        "nodes": [
            {"id": "n", "type": "value.number", "inputs": {"value": 1}},
            {"id": "boom", "type": "flow.fail", "inputs": {"message": "kaput"}},
        ],
        "edges": [
            {
                "id": "e",
                "sourceNodeId": "n",
                "sourcePortId": "out",
                "targetNodeId": "boom",
                "targetPortId": "value",
            }
        ],
    }
    one, two = workdir(tmp_path / "plain"), workdir(tmp_path / "json")
    for wd in (one, two):
        (wd / "fails.json").write_text(json.dumps(flow))
    plain, as_json = cg_many(
        [(["run", "fails.json"], one, None), (["run", "fails.json", "--json"], two, None)]
    )
    assert plain.returncode == 1, plain.stderr
    assert "node:failed               boom  kaput" in plain.stdout
    assert "\nstatus: failed\nerror: Node 'boom' failed: kaput\noutputs: {}" in plain.stdout
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout.splitlines()[-1])["type"] == "flow:failed"


def test_bad_input_is_one_line_and_a_nonzero_exit(tmp_path: Path) -> None:
    wd = workdir(tmp_path / "base")
    (wd / "broken.json").write_text('{"id": "x", "nodes": [')
    (wd / "list.json").write_text("[1, 2]")
    (wd / "unknown-type.json").write_text(json.dumps({"id": "u", "nodes": [{"id": "a", "type": "no.such"}]}))
    (wd / "bad-edge.json").write_text(
        json.dumps(
            {
                "id": "b",
                "nodes": [{"id": "a", "type": "math.add"}],
                "edges": [
                    {
                        "id": "e",
                        "sourceNodeId": "a",
                        "sourcePortId": "result",
                        "targetNodeId": "zz",
                        "targetPortId": "a",
                    }
                ],
            }
        )
    )
    cases: list[tuple[list[str], int, str]] = [
        (["run", "missing.json"], 2, "error: flow file 'missing.json' does not exist"),
        (["run", "examples"], 2, "error: 'examples' is a directory, not a flow file"),
        (
            ["run", "broken.json"],
            2,
            "error: flow file 'broken.json' is not valid JSON: Expecting value at line 1",
        ),
        (["run", "list.json"], 2, "error: flow file 'list.json' must hold a JSON object (a flow), not list"),
        (["run", "unknown-type.json"], 2, "error: invalid flow: node 'a': unknown node type 'no.such'"),
        (["run", "bad-edge.json"], 2, "error: invalid flow: edge 'e'"),
        (
            ["run", "examples/math-diamond.json", "--set", "x.value"],
            2,
            "error: --set 'x.value': expected nodeId.port=value",
        ),
        (
            ["run", "examples/math-diamond.json", "--set", "nope.value=1"],
            2,
            "error: --set nope.value: the flow has no node 'nope' (its nodes: x, plus, times, sum, half)",
        ),
        (
            ["run", "examples/math-diamond.json", "--set", "x.valu=1"],
            2,
            "error: --set x.valu: node 'x' (value.number) has no input port 'valu' (its inputs: value)",
        ),
        (
            ["run", "examples/math-diamond.json", "--set", "x.value=six"],
            2,
            "error: invalid flow: node 'x' port 'value': expected number, got string",
        ),
        (
            ["run", "examples/hello-world.json", "--server", "http://127.0.0.1:9"],
            3,
            "error: cannot reach the chaingraph server at http://127.0.0.1:9 (connection refused); is it running?",
        ),
        (["flows", "list", "--server", "http://127.0.0.1:9"], 3, "error: cannot reach the chaingraph server"),
        (["run"], 2, "error: Missing argument 'FLOW.json'. (see `chaingraph run --help`)"),
        (["nope"], 2, "error: No such command 'nope'."),
        (["executions", "list", "f", "--limit", "0"], 2, "error: Invalid value for '--limit'"),
    ]
    # each in its own copy of the directory: in-process runs in one data directory would queue
    # on its SQLite lock
    dirs = []
    for i in range(len(cases)):
        copy = tmp_path / f"case{i}"
        shutil.copytree(wd, copy, symlinks=True)
        dirs.append(copy)
    results = cg_many([(args, d, None) for (args, _, _), d in zip(cases, dirs, strict=True)])
    for (args, code, message), proc in zip(cases, results, strict=True):
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        assert one_error_line(proc).startswith(message), (args, proc.stderr)
        assert proc.stdout == "" or proc.stdout.startswith("execution EX"), (args, proc.stdout)


def test_ctrl_c_stops_the_execution_and_signals_pause_and_resume(tmp_path: Path) -> None:
    wd = workdir(tmp_path)
    sets = [f"--set=sleep{i}.ms=400" for i in range(1, 7)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaingraph_executor", "run", "examples/slow-flow.json", *sets],
        cwd=wd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []

    def wait_for(text: str) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} never came: {''.join(seen)}")

    wait_for("node:started              sleep1")
    proc.send_signal(signal.SIGUSR1)
    wait_for("flow:paused")
    proc.send_signal(signal.SIGUSR2)
    wait_for("flow:resumed")
    wait_for("node:started              sleep3")
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    out = "".join(seen) + rest
    assert proc.returncode == 1, out + err
    assert "flow:cancelled" in out and "Stopped from the command line" in out
    assert "\nstatus: stopped\nerror: Stopped from the command line\n" in out
    assert "node:started              sleep6" not in out
    assert "stopping the execution" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------ with a server
def test_run_on_a_server(server: Server) -> None:
    plain, as_json = cg_many(
        [
            (
                ["run", "examples/hello-world.json", "--server", server.url, "--set", "name.value=Server"],
                server.cwd,
                server.env,
            ),
            (["run", "examples/math-diamond.json", "--json"], server.cwd, server.env),  # CHAINGRAPH_SERVER
        ]
    )
    assert plain.returncode == 0, plain.stderr
    assert "execution EX" in plain.stdout and f"of flow hello-world ({server.url})" in plain.stdout
    assert "[info] Hello, Server!" in plain.stdout and "\nstatus: completed\n" in plain.stdout
    assert outputs_of(plain.stdout)["log"]["out"] == "Hello, Server!"
    # CHAINGRAPH_SERVER (set in the environment) is --server
    assert as_json.returncode == 0 and f"of flow math-diamond ({server.url})" in as_json.stderr
    assert json.loads(as_json.stdout.splitlines()[-1])["type"] == "flow:completed"


def test_flows_commands(server: Server) -> None:
    added = server.cg("flows", "add", "examples/math-diamond.json", "--set", "x.value=2")
    assert added.returncode == 0 and re.fullmatch(r"flow math-diamond version \d+\n", added.stdout)
    listed, shown, as_json = cg_many(
        [
            (["flows", "list"], server.cwd, server.env),
            (["flows", "show", "math-diamond"], server.cwd, server.env),
            (["flows", "show", "math-diamond", "--json"], server.cwd, server.env),
        ]
    )
    assert listed.stdout.splitlines()[0].split() == ["FLOW", "VERSION", "NODES", "NAME", "UPDATED"]
    assert any(line.startswith("math-diamond") for line in listed.stdout.splitlines())
    assert 'x      value.number   {"value": 2}' in shown.stdout
    record = json.loads(as_json.stdout)
    assert record["flowId"] == "math-diamond" and record["flow"]["nodes"][0]["inputs"] == {"value": 2}
    page = json.loads(server.cg("flows", "list", "--json", "--limit", "1").stdout)
    assert len(page["items"]) == 1

    removed = server.cg("flows", "rm", "math-diamond")
    assert removed.returncode == 0 and removed.stdout == "deleted flow math-diamond\n"
    missing = server.cg("flows", "show", "math-diamond")
    assert missing.returncode == 2
    assert one_error_line(missing) == "error: Flow with id math-diamond not found"
    invalid = server.cg("flows", "add", "examples/math-diamond.json", "--set", "x.value=[1]")
    assert invalid.returncode == 2 and "expected number" in one_error_line(invalid)


def test_executions_commands(server: Server) -> None:
    assert (
        server.cg("flows", "add", "examples/slow-flow.json", *FAST_SLEEPS, "--set=sleep3.ms=300").returncode
        == 0
    )
    created = server.cg("executions", "create", "slow-flow")
    eid = created.stdout.strip()
    assert created.returncode == 0 and re.fullmatch(r"EX\w{24}", eid)
    assert "status:    created" in server.cg("executions", "show", eid).stdout
    assert server.cg("executions", "start", eid).stdout == f"started {eid}\n"
    events = server.cg("executions", "events", eid)
    assert events.returncode == 0 and events.stdout.splitlines()[-1].split()[1] == "flow:completed"
    shown = server.cg("executions", "show", eid, "--json")
    assert json.loads(shown.stdout)["status"] == "completed"

    # pause at a breakpoint, step, resume, then pause and stop
    eid = server.cg("executions", "create", "slow-flow", "--start", "--breakpoint", "sleep2").stdout.strip()
    hit = server.cg(
        "executions", "events", eid, "--until", "debug:breakpoint-hit", "--type", "debug:breakpoint-hit"
    )
    kind, node = hit.stdout.split()[1:3]
    assert (kind, node) == ("debug:breakpoint-hit", "sleep2")
    pause = server.cg("executions", "events", eid, "--type", "flow:paused", "--until", "flow:paused")
    assert pause.stdout.split()[1:3] == ["flow:paused", "breakpoint"]
    assert server.cg("executions", "step", eid).stdout == f"stepped {eid}\n"
    # the step starts sleep2, then the run pauses again: wait for that pause, then resume
    after = str(int(pause.stdout.split()[0]) + 2)
    step_pause = server.cg(
        "executions", "events", eid, "--from", after, "--type", "flow:paused", "--until", "flow:paused"
    )
    assert step_pause.stdout.split()[1:] == ["flow:paused", "step"]
    assert server.cg("executions", "resume", eid).stdout == f"resumed {eid}\n"
    ended = server.cg(
        "executions", "events", eid, "--type", "flow:paused", "--type", "flow:completed", "--json"
    )
    reasons = [json.loads(line)["data"].get("reason") for line in ended.stdout.splitlines()]
    assert reasons[0].startswith("breakpoint") and reasons[1:] == ["step", None]

    # the example's own one-second sleeps: still running when the pause arrives, even on a busy machine
    assert server.cg("flows", "add", "examples/slow-flow.json").returncode == 0
    eid = server.cg("executions", "create", "slow-flow", "--start").stdout.strip()
    paused = server.cg("executions", "pause", eid, "--reason", "coffee")
    assert paused.returncode == 0 and paused.stdout == f"paused {eid}\n"
    pause = server.cg("executions", "events", eid, "--until", "flow:paused", "--type", "flow:paused")
    assert pause.stdout.split()[1:] == ["flow:paused", "coffee"]
    stopped = server.cg("executions", "stop", eid, "--reason", "enough")
    assert stopped.returncode == 0 and stopped.stdout == f"stopped {eid}\n"
    shown = server.cg("executions", "show", eid)
    assert "status:    stopped" in shown.stdout and "error:     enough" in shown.stdout
    refused = server.cg("executions", "resume", eid)
    assert (
        refused.returncode == 2
        and one_error_line(refused) == "error: Cannot resume execution in status stopped"
    )
    unknown = server.cg("executions", "show", "EXnope")
    assert unknown.returncode == 2 and one_error_line(unknown) == "error: Execution EXnope not found"

    listed = server.cg("executions", "list", "slow-flow")
    assert listed.stdout.splitlines()[0].split()[:2] == ["EXECUTION", "STATUS"]
    assert len(listed.stdout.splitlines()) == 4 and eid in listed.stdout.splitlines()[1]
    assert len(json.loads(server.cg("executions", "list", "slow-flow", "--json").stdout)) == 3

    # a tree: the emitter's root execution and its two children
    server.cg("flows", "add", "examples/emitter-listeners.json")
    eid = server.cg("executions", "create", "emitter-listeners", "--start").stdout.strip()
    server.cg("executions", "events", eid, "--type", "flow:completed")
    tree = server.cg("executions", "tree", eid).stdout.splitlines()
    assert tree[0] == f"{eid}  completed"
    assert sorted(line.split()[-1] for line in tree[1:]) == ["(order.created)", "(order.shipped)"]
    assert all(line.startswith("  EX") for line in tree[1:])
    nodes = json.loads(server.cg("executions", "tree", eid, "--json").stdout)
    assert [n["level"] for n in nodes] == [0, 1, 1]


def test_check_sees_the_worker(server: Server) -> None:
    proc = server.cg("check")
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "config"],
        ["ok", "database"],
        ["ok", "schema"],
        ["ok", "workers"],
    ]
    assert "1 alive: embedded" in lines[3]


def test_check_without_a_database(tmp_path: Path) -> None:
    proc = cg("check", cwd=workdir(tmp_path))
    assert proc.returncode == 1
    assert "FAIL  database  .chaingraph/chaingraph.db does not exist yet" in proc.stdout
    unreachable = cg("check", "--database-url", "postgresql://u:secret@127.0.0.1:9/db", cwd=tmp_path)
    assert unreachable.returncode == 1 and "secret" not in unreachable.stdout
    assert "FAIL  database  cannot connect to postgresql://u:***@127.0.0.1:9/db" in unreachable.stdout


def test_users_and_tokens(tmp_path: Path) -> None:
    wd = workdir(tmp_path)
    env = clean_env(CHAINGRAPH_DATA_DIR=str(wd / "data"))
    added = cg("users", "add", "ada", cwd=wd, env=env)
    assert added.returncode == 0, added.stderr
    token = re.search(r"token: (cgx_\S+)", added.stdout)
    assert token and added.stdout.startswith("user ada (")
    admin = cg("users", "add", "root", "--admin", cwd=wd, env=env)
    assert " admin\n" in admin.stdout
    dup = cg("users", "add", "ada", cwd=wd, env=env)
    assert dup.returncode == 2 and one_error_line(dup) == "error: user 'ada' already exists"
    listed = cg("users", "list", cwd=wd, env=env)
    assert [line.split()[1] for line in listed.stdout.splitlines()] == ["ada", "root"]

    srv = start_server(wd, CHAINGRAPH_DEV_AUTH="false")
    try:
        ok, no_token, wrong = cg_many(
            [
                (
                    ["run", "examples/hello-world.json", "--server", srv.url, "--token", token.group(1)],
                    wd,
                    srv.env,
                ),
                (["flows", "list"], wd, srv.env),
                (
                    ["run", "examples/hello-world.json", "--server", srv.url, "--token", "cgx_wrong"],
                    wd,
                    srv.env,
                ),
            ]
        )
        assert ok.returncode == 0, ok.stderr
        assert "\nstatus: completed\n" in ok.stdout
        with_env = cg("flows", "list", cwd=wd, env={**srv.env, "CHAINGRAPH_TOKEN": token.group(1)})
        assert "hello-world" in with_env.stdout
        assert no_token.returncode == 2
        assert one_error_line(no_token).startswith(
            f"error: the server at {srv.url} refused the request: Authentication required"
        )
        assert wrong.returncode == 2
        assert "Invalid or revoked token (pass --token or set CHAINGRAPH_TOKEN" in one_error_line(wrong)
        revoked = cg("users", "revoke", "ada", cwd=wd, env=env)
        assert revoked.stdout == "revoked ada\n"
        after = cg("flows", "list", "--token", token.group(1), cwd=wd, env=srv.env)
        assert after.returncode == 2 and "Invalid or revoked token" in after.stderr
    finally:
        assert srv.stop() == 0


def test_serve_refuses_a_busy_port_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    srv = start_server(workdir(tmp_path))
    try:
        busy = cg("serve", cwd=tmp_path, env=srv.env)
        assert busy.returncode == 1
        assert one_error_line(busy).startswith(f"error: cannot listen on 127.0.0.1:{srv.port}")
        assert srv.cg("check").stdout.count("ok ") == 4
    finally:
        assert srv.stop(signal.SIGTERM) == 0
    assert srv.lines[0] == f"chaingraph embedded service (API + worker) listening on {srv.url}"
    after = srv.cg("check")
    assert "warn  workers   none seen" in after.stdout  # it deregistered on the way out


def test_migrate_and_version(tmp_path: Path) -> None:
    wd = workdir(tmp_path)
    migrated, version, short, helped = cg_many(
        [(["migrate"], wd, None), (["version"], wd, None), (["--version"], wd, None), (["--help"], wd, None)]
    )
    assert migrated.returncode == 0 and migrated.stdout.startswith("schema at ")
    assert version.stdout == "chaingraph-executor 0.1.0\n"
    assert short.stdout == "chaingraph, version 0.1.0\n"
    commands = re.findall(r"^  (\w+)", helped.stdout.split("Commands:")[1], re.M)
    assert commands == [
        "run",
        "flows",
        "executions",
        "serve",
        "api",
        "worker",
        "migrate",
        "users",
        "check",
        "version",
    ]


def test_every_option_has_an_environment_variable_shown_in_help() -> None:
    import click

    from chaingraph_executor.cli import cli

    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Option]]:
        for param in command.params:
            if isinstance(param, click.Option) and param.name not in ("help", "version"):
                yield path, param
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")

    options = list(walk(cli, "chaingraph"))
    assert len(options) > 40
    for path, option in options:
        assert isinstance(option.envvar, str) and option.envvar.startswith("CHAINGRAPH_"), (path, option.name)
        assert option.show_envvar, (path, option.name)
    helped = cg("executions", "events", "--help", cwd=ROOT)
    assert "[env var: CHAINGRAPH_SERVER]" in helped.stdout.replace("\n", " ").replace("  ", " ") or (
        "CHAINGRAPH_SERVER" in helped.stdout
    )


# ------------------------------------------------------------------------------------ the docs
@dataclass
class Command:
    line: str
    expected: list[str]


def console_commands(markdown: str) -> list[Command]:
    """The ``$ command`` lines of the ```console blocks, each with the lines shown after it."""
    commands: list[Command] = []
    for block in re.findall(r"^```console\n(.*?)^```", markdown, re.M | re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append(Command(line[2:], []))
            elif commands:
                commands[-1].expected.append(line)
    return commands


SETUP = {"make venv", ". .venv/bin/activate", "source .venv/bin/activate"}
SERVE = re.compile(r"^((?:[A-Z_]+=\S+ )*)chaingraph serve\b(.*)$")


def doc_script(commands: list[Command], port: int) -> str:
    """One bash session for a whole page; a ``chaingraph serve`` runs in the background until
    the next one (or the end)."""
    lines = [
        'cg_stop() { if [ -n "${CG_SERVE_PID:-}" ]; then kill -TERM $CG_SERVE_PID; wait $CG_SERVE_PID 2>/dev/null; CG_SERVE_PID=; fi; }',
        "trap cg_stop EXIT",
        "__s=0",
    ]
    for i, command in enumerate(commands):
        text = command.line.replace("4021", str(port))
        lines.append(f"printf '@@@cmd {i}\\n'")
        if command.line in SETUP:
            lines.append(f"# skipped: {command.line}")
            body = "true"
        elif (match := SERVE.match(text)) is not None:
            body = (
                "cg_stop; "
                f"{match.group(1)} chaingraph serve{match.group(2)} > .serve.log 2>&1 & CG_SERVE_PID=$!; "
                "for _ in $(seq 1 600); do grep -q listening .serve.log && break; sleep 0.05; done; "
                "head -n 1 .serve.log"
            )
        elif text.startswith("chaingraph run") and "--server" not in text:
            body = "env -u CHAINGRAPH_SERVER " + text  # in-process, as the page says
        else:
            body = text
        lines.append(f"(exit $__s); {{ {body}\n}} 2>&1")
        lines.append("__s=$?")
        lines.append("printf '\\n@@@status %d\\n' $__s")
    return "\n".join(lines) + "\n"


def matches(expected: list[str], actual: str) -> bool:
    """``expected`` lines against the output; ``...`` matches any text (also across lines)."""
    want = "\n".join(line.rstrip() for line in expected).strip("\n")
    got = "\n".join(line.rstrip() for line in actual.splitlines()).strip("\n")
    pattern = ".*?".join(re.escape(part) for part in want.split("..."))
    return re.fullmatch(pattern, got, re.S) is not None


def run_doc(doc: Path, tmp_path: Path) -> None:
    commands = console_commands(doc.read_text())
    assert commands, f"no console samples in {doc}"
    port = free_port()
    wd = workdir(tmp_path)
    env = clean_env(CHAINGRAPH_PORT=str(port), CHAINGRAPH_SERVER=f"http://127.0.0.1:{port}")
    proc = subprocess.run(
        ["bash", "-c", doc_script(commands, port)],
        cwd=wd,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )
    chunks = re.split(r"@@@cmd (\d+)\n", proc.stdout)[1:]
    results: dict[int, tuple[str, int]] = {}
    for number, chunk in zip(chunks[::2], chunks[1::2], strict=True):
        body, _, status = chunk.rpartition("\n@@@status ")
        results[int(number)] = (body.replace(str(port), "4021"), int(status.strip() or -1))
    for i, command in enumerate(commands):
        assert i in results, f"{doc.name}: `{command.line}` did not run; stderr: {proc.stderr[-2000:]}"
        output, status = results[i]
        next_is_status = i + 1 < len(commands) and commands[i + 1].line == "echo $?"
        shows_error = bool(command.expected) and command.expected[0].startswith("error:")
        if shows_error:
            assert status != 0, f"{doc.name}: `{command.line}` shows an error but exited 0"
        elif not next_is_status:
            assert status == 0, f"{doc.name}: `{command.line}` exited {status}:\n{output}"
        if command.expected and any(line.strip() for line in command.expected):
            assert matches(command.expected, output), (
                f"{doc.name}: `{command.line}` printed:\n{output}\n--- but the doc shows:\n"
                + "\n".join(command.expected)
            )


@pytest.mark.parametrize("name", ["quickstart.md", "cli.md"])
def test_shell_samples_of_the_docs(name: str, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("curl is needed by the shell samples of the docs")
        pytest.skip("curl is not installed")
    run_doc(ROOT / "docs" / name, tmp_path)


def test_readme_quickstart_produces_what_it_says(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1]
    command = next(line.split("#")[0].strip() for line in quickstart.splitlines() if "chaingraph run" in line)
    assert command == ".venv/bin/chaingraph run examples/hello-world.json"
    wd = workdir(tmp_path)
    proc = subprocess.run(
        [str(BIN / "chaingraph"), *command.split()[1:]],
        cwd=wd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    for event in (
        "flow:started",
        "node:started",
        "edge:transfer-completed",
        "node:completed",
        "flow:completed",
    ):
        assert f"  {event}" in proc.stdout
    assert "\nstatus: completed\noutputs: {" in proc.stdout
    assert outputs_of(proc.stdout) == {"log": {"out": "Hello, World!", "text": "[info] Hello, World!"}}
    invalid = subprocess.run(
        [str(BIN / "chaingraph"), "run", "examples/hello-world.json", "--set", "log.level=loud"],
        cwd=wd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert invalid.returncode == 2 and one_error_line(invalid).startswith("error: invalid flow: node 'log'")
