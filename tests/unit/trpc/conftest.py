"""Shared fixtures for the tRPC unit tests: the spec's test router, the captured vectors, the
harness' decoders and a live uvicorn server."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import sys
from collections.abc import AsyncIterator, Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp

ROOT = Path(__file__).resolve().parents[3]
VECTORS = ROOT / "tests" / "fixtures" / "trpc_vectors"


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@cache
def spec_app_module() -> ModuleType:
    """``tests/compat/trpc_test_app.py``: the PROTOCOL.md §9.2 router on /trpc, /plain, /dev."""
    return _load("trpc_test_app", ROOT / "tests" / "compat" / "trpc_test_app.py")


@cache
def harness_compare() -> ModuleType:
    """The harness' ``compare.py`` (its SuperJSON / JSONL / SSE decoders)."""
    return _load("trpc_harness_compare", ROOT / "tests" / "compat" / "harness" / "compare.py")


def load_vector(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / f"{name}.json").read_text())


def vector_names(prefix: str) -> list[str]:
    return sorted(p.stem for p in VECTORS.glob(f"{prefix}*.json"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server() -> Callable[[ASGIApp], Any]:
    """``async with live_server(app) as base_url`` — a real uvicorn in this event loop."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run(app: ASGIApp) -> AsyncIterator[str]:
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        try:
            yield f"127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)

    return run


@pytest.fixture(scope="session")
def spec_app() -> ModuleType:
    return spec_app_module()


@pytest.fixture(scope="session")
def harness() -> ModuleType:
    return harness_compare()


@pytest.fixture(scope="session")
def vector() -> Callable[[str], dict[str, Any]]:
    return load_vector
