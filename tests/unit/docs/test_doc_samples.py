"""Every ```python sample in the docs listed here runs and its assertions hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[3] / "docs"
FILES = ["writing-nodes.md"]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("name", FILES)
def test_python_samples_run(name: str) -> None:
    blocks = python_blocks(DOCS / name)
    assert blocks, f"{name} has no python sample"
    for code in blocks:
        exec(compile(code, f"{name}", "exec"), {"__name__": f"doc_{name}"})


def test_json_flow_samples_are_valid_flows() -> None:
    import json

    from chaingraph_executor.domain.flow import parse_flow
    from chaingraph_executor.engine.graph import compile_flow
    from chaingraph_executor.engine.library import builtin_registry

    blocks = re.findall(r"```json\n(.*?)```", (DOCS / "flow-format.md").read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        compile_flow(parse_flow(json.loads(block)), builtin_registry())


def test_node_modules_setting_loads_user_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    from chaingraph_executor.bootstrap import build_registry
    from chaingraph_executor.settings import Settings

    monkeypatch.setenv("CHAINGRAPH_NODE_MODULES", '["chaingraph_executor.testing"]')
    registry = build_registry(Settings())
    assert "test.add" in registry and "math.add" in registry


def test_entry_point_modules_are_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from chaingraph_executor import bootstrap
    from chaingraph_executor.settings import Settings

    entry = importlib.metadata.EntryPoint(
        "acme", "chaingraph_executor.testing", bootstrap.NODE_ENTRY_POINT_GROUP
    )

    def fake_entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        return [entry] if group == bootstrap.NODE_ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    assert "test.add" in bootstrap.build_registry(Settings())
