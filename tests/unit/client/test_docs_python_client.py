"""Every ```python sample of ``docs/python-client.md`` runs, in order, as one script against a
live server (the real API app on services built in this test), and prints what the ```text
block after it shows (``...`` matches any text)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "python-client.md"
DOC_URL = "http://127.0.0.1:4021"


def samples(markdown: str) -> list[tuple[str, str | None]]:
    """``(code, expected output or None)`` for each python block, in order."""
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", markdown, re.M | re.S)
    out: list[tuple[str, str | None]] = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "python":
            continue
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        expected = following[1] if following is not None and following[0] == "text" else None
        out.append((body, expected))
    return out


def matches(expected: str, actual: str) -> bool:
    want = "\n".join(line.rstrip() for line in expected.splitlines()).strip("\n")
    got = "\n".join(line.rstrip() for line in actual.splitlines()).strip("\n")
    pattern = ".*?".join(re.escape(part) for part in want.split("..."))
    return re.fullmatch(pattern, got, re.S) is not None


def test_the_doc_has_samples_with_outputs() -> None:
    found = samples(DOC.read_text())
    assert len(found) >= 9
    assert all(expected for _, expected in found), "every sample shows what it prints"


async def test_every_python_sample_runs_and_prints_what_the_doc_shows(live: Any) -> None:
    found = samples(DOC.read_text())
    parts = []
    for i, (code, _) in enumerate(found):
        parts.append(f"print('@@@sample {i}', flush=True)\n")
        parts.append(code.replace(DOC_URL, live.url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINGRAPH_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "\n".join(parts),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 100)
    text = stdout.decode().replace(live.url, DOC_URL)
    assert proc.returncode == 0, text + "\n" + stderr.decode()[-4000:]
    chunks = re.split(r"@@@sample (\d+)\n", text)[1:]
    outputs = {int(n): body for n, body in zip(chunks[::2], chunks[1::2], strict=True)}
    assert sorted(outputs) == list(range(len(found)))
    for i, (code, expected) in enumerate(found):
        if expected is not None:
            assert matches(expected, outputs[i]), (
                f"sample {i} printed:\n{outputs[i]}\n--- but the doc shows:\n{expected}\n--- code:\n{code}"
            )
