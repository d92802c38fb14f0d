"""FlowStore contract: versions, reads, keyset listing, deletion (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chaingraph_executor.domain.flow import Flow
from chaingraph_executor.errors import InvalidInput


def flow(flow_id: str, name: str = "demo", nodes: int = 1) -> Flow:
    return Flow.model_validate(
        {
            "id": flow_id,
            "metadata": {"name": name, "tags": ["a"]},
            "nodes": [{"id": f"n{i}", "type": "test.value", "inputs": {"value": i}} for i in range(nodes)],
        }
    )


async def test_save_new_flow_is_version_1_with_owner(backend: Any) -> None:
    stored = await backend.flows.save(flow("f1"), "alice")
    assert stored.version == 1
    assert stored.owner_id == "alice"
    assert stored.flow.metadata.owner_id == "alice"
    assert stored.flow.metadata.version == 1
    assert stored.created_at == stored.updated_at
    assert stored.created_at.tzinfo is not None

    got = await backend.flows.get("f1")
    assert got == stored


async def test_saving_again_adds_a_version_and_keeps_the_old_one(backend: Any) -> None:
    first = await backend.flows.save(flow("f1", nodes=1), "alice")
    second = await backend.flows.save(flow("f1", name="renamed", nodes=2), "alice")
    assert second.version == 2
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at

    current = await backend.flows.get("f1")
    assert current is not None
    assert current.version == 2
    assert current.flow.metadata.name == "renamed"
    assert len(current.flow.nodes) == 2

    old = await backend.flows.get("f1", version=1)
    assert old is not None
    assert old.version == 1
    assert old.flow.metadata.name == "demo"
    assert len(old.flow.nodes) == 1
    assert old.flow.metadata.version == 1

    assert (await backend.flows.get("f1", version=2)).flow == current.flow
    assert await backend.flows.get("f1", version=3) is None
    assert await backend.flows.get("missing") is None
    assert await backend.flows.get("missing", version=1) is None


async def test_concurrent_saves_get_distinct_versions(backend: Any) -> None:
    stored = await asyncio.gather(*(backend.flows.save(flow("f1"), "alice") for _ in range(5)))
    assert sorted(s.version for s in stored) == [1, 2, 3, 4, 5]
    assert (await backend.flows.get("f1")).version == 5


async def test_list_is_newest_update_first_and_keyset_paginated(backend: Any) -> None:
    for i in range(5):
        await backend.flows.save(flow(f"f{i}"), "alice" if i % 2 == 0 else "bob")
    await backend.flows.save(flow("f1"), "bob")  # f1 is now the most recently updated

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await backend.flows.list(None, limit=2, cursor=cursor)
        assert len(page.items) <= 2
        seen += [item.flow.id for item in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["f1", "f4", "f3", "f2", "f0"]
    assert pages == 3

    alice = await backend.flows.list("alice", limit=10, cursor=None)
    assert [item.flow.id for item in alice.items] == ["f4", "f2", "f0"]
    assert alice.next_cursor is None
    assert (await backend.flows.list("nobody", limit=10, cursor=None)).items == []


async def test_list_refuses_a_garbage_cursor(backend: Any) -> None:
    with pytest.raises(InvalidInput):
        await backend.flows.list(None, limit=2, cursor="not-a-cursor!")


async def _node_count(backend: Any, flow_id: str, version: int | None) -> int:
    stored = await backend.flows.get(flow_id, version=version)
    assert stored is not None
    return len(stored.flow.nodes)


async def test_delete_removes_every_version(backend: Any) -> None:
    await backend.flows.save(flow("f1"), "alice")
    await backend.flows.save(flow("f1"), "alice")
    await backend.flows.save(flow("f2"), "alice")
    assert await backend.flows.delete("f1") is True
    assert await backend.flows.get("f1") is None
    assert await backend.flows.get("f1", version=1) is None
    assert await backend.flows.delete("f1") is False
    assert (await backend.flows.get("f2")) is not None
    # the id can be reused from version 1
    assert (await backend.flows.save(flow("f1"), "alice")).version == 1
    assert [await _node_count(backend, "f1", v) for v in (None, 1)] == [1, 1]
    # ... and its content is read fresh, never a parse remembered for (id, version)
    await backend.flows.delete("f1")
    assert (await backend.flows.save(flow("f1", nodes=3), "alice")).version == 1
    assert [await _node_count(backend, "f1", v) for v in (None, 1)] == [3, 3]
