"""Fixtures of the client tests: the real API app on services built for the embedded role (DBOS
on SQLite in a temporary directory), reached in-process through ``httpx.ASGITransport`` or over
a real socket from an in-process uvicorn (for WebSockets), optionally behind a TCP proxy whose
connections a test can cut."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from chaingraph_executor.api.app import create_app
from chaingraph_executor.api.trpc.lifecycle import TRPCUvicornServer
from chaingraph_executor.bootstrap import Services, build_services
from chaingraph_executor.client import ExecutorClient, ReconnectPolicy
from chaingraph_executor.serve import api_deps
from chaingraph_executor.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"

FAST_RECONNECT = ReconnectPolicy(attempts=40, base_delay_s=0.05, max_delay_s=0.2)


def node(id_: str, type_: str, **inputs: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "inputs": inputs}


def edge(i: int, src: str, dst: str) -> dict[str, str]:
    sn, sp = src.split(".")
    tn, tp = dst.split(".")
    return {"id": f"e{i}", "sourceNodeId": sn, "sourcePortId": sp, "targetNodeId": tn, "targetPortId": tp}


def sleepy_flow(flow_id: str = "sleepy", count: int = 5, ms: int = 150) -> dict[str, Any]:
    """``a`` (1 + 2) then ``count`` sleeps of ``ms`` in a row, then ``b`` (+ 10): outputs b.result = 13."""
    nodes = [node("a", "math.add", a=1, b=2)]
    nodes += [node(f"s{i}", "flow.sleep", ms=ms) for i in range(1, count + 1)]
    nodes.append(node("b", "math.add", b=10))
    edges = [edge(0, "a.result", "s1.value")]
    edges += [edge(i, f"s{i}.out", f"s{i + 1}.value") for i in range(1, count)]
    edges.append(edge(count, f"s{count}.out", "b.a"))
    return {"id": flow_id, "metadata": {"name": "Sleepy"}, "nodes": nodes, "edges": edges}


@pytest.fixture
def sleepy() -> Callable[..., dict[str, Any]]:
    """``sleepy(flow_id, count, ms)``: a flow document with a chain of sleeps."""
    return sleepy_flow


@pytest.fixture
def fast_reconnect() -> ReconnectPolicy:
    return FAST_RECONNECT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=None,
        dbos_database_url=None,
        shutdown_grace_s=0,
        **overrides,
    )


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    async with build_services(settings_for(tmp_path), "embedded") as sv:
        yield sv


@pytest.fixture
def app(services: Services) -> Starlette:
    return create_app(api_deps(services))


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[ExecutorClient]:
    """In-process: HTTP through ``httpx.ASGITransport``, subscriptions over SSE."""
    async with ExecutorClient("http://testserver", transport=httpx.ASGITransport(app=app)) as c:
        yield c


class LiveServer:
    """The API app served by uvicorn on ``port`` in this event loop, shut down the way the
    service does it (``TRPCUvicornServer``: WebSocket clients are told to reconnect, streams are
    ended). ``restart()`` serves a fresh app on the same port (clients see their connections
    drop and must resume)."""

    def __init__(self, make_app: Callable[[], Starlette]) -> None:
        self.make_app = make_app
        self.port = free_port()
        self.app = make_app()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = TRPCUvicornServer(config, [self.app.state.trpc], grace=0)
        self._task = asyncio.ensure_future(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await asyncio.wait_for(self._task, 10)
        self._server = self._task = None

    async def restart(self, down_for: float = 0.2) -> None:
        await self.stop()
        await asyncio.sleep(down_for)
        self.app = self.make_app()
        await self.start()


@pytest.fixture
async def live(services: Services) -> AsyncIterator[LiveServer]:
    server = LiveServer(lambda: create_app(api_deps(services)))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class CuttableProxy:
    """A TCP proxy to ``127.0.0.1:target``; ``cut()`` drops every open connection at once."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        self.cuts += 1
        for writer in list(self._writers):
            transport = writer.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        tasks = {
            asyncio.ensure_future(pipe(reader, up_writer)),
            asyncio.ensure_future(pipe(up_reader, writer)),
        }
        self._tasks |= tasks
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks -= tasks
        self._writers -= {writer, up_writer}


@pytest.fixture
async def proxy(live: LiveServer) -> AsyncIterator[CuttableProxy]:
    async with CuttableProxy(live.port) as p:
        yield p
