"""UserStore contract: add, look up by token hash, list, revoke (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from chaingraph_executor.errors import Conflict


async def test_add_and_find_by_token_hash(backend: Any) -> None:
    alice = await backend.users.add("alice", is_admin=True, token_hash="h-alice")
    bob = await backend.users.add("bob", is_admin=False, token_hash="h-bob")
    assert alice.name == "alice" and alice.is_admin and not alice.revoked
    assert alice.id != bob.id
    assert alice.created_at.tzinfo is not None

    assert await backend.users.by_token_hash("h-alice") == alice
    assert await backend.users.by_token_hash("h-bob") == bob
    assert await backend.users.by_token_hash("nope") is None
    assert [u.name for u in await backend.users.list()] == ["alice", "bob"]


async def test_names_and_token_hashes_are_unique(backend: Any) -> None:
    await backend.users.add("alice", is_admin=False, token_hash="h1")
    with pytest.raises(Conflict):
        await backend.users.add("alice", is_admin=False, token_hash="h2")
    with pytest.raises(Conflict):
        await backend.users.add("carol", is_admin=False, token_hash="h1")
    assert [u.name for u in await backend.users.list()] == ["alice"]


async def test_revoke_by_name_or_id(backend: Any) -> None:
    alice = await backend.users.add("alice", is_admin=False, token_hash="h-alice")
    bob = await backend.users.add("bob", is_admin=False, token_hash="h-bob")

    assert await backend.users.revoke("alice") is True
    assert await backend.users.revoke("alice") is False  # already revoked
    assert await backend.users.by_token_hash("h-alice") is None
    assert await backend.users.revoke(bob.id) is True
    assert await backend.users.by_token_hash("h-bob") is None
    assert await backend.users.revoke("nobody") is False

    listed = {u.name: u for u in await backend.users.list()}
    assert listed["alice"].revoked and listed["bob"].revoked
    assert listed["alice"].id == alice.id
