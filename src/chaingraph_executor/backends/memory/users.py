"""``InMemoryUserStore``: users and token hashes in ``MemoryState``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from chaingraph_executor.backends.memory.state import MemoryState, UserRecord
from chaingraph_executor.domain.ids import random_id
from chaingraph_executor.errors import Conflict
from chaingraph_executor.ports import User


def _user(record: UserRecord) -> User:
    return replace(record.user, revoked=record.revoked_at is not None)


class InMemoryUserStore:
    """``by_token_hash`` never returns a revoked user."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def add(self, name: str, *, is_admin: bool, token_hash: str) -> User:
        for record in self._state.users.values():
            if record.user.name == name or record.token_hash == token_hash:
                raise Conflict(f"a user named {name!r} (or with this token) already exists")
        user = User(id=random_id("US"), name=name, is_admin=is_admin, created_at=datetime.now(UTC))
        self._state.users[user.id] = UserRecord(user=user, token_hash=token_hash)
        return user

    async def by_token_hash(self, token_hash: str) -> User | None:
        for record in self._state.users.values():
            if record.token_hash == token_hash and record.revoked_at is None:
                return _user(record)
        return None

    async def list(self) -> list[User]:
        records = sorted(self._state.users.values(), key=lambda r: (r.user.created_at, r.user.name))
        return [_user(r) for r in records]

    async def revoke(self, name_or_id: str) -> bool:
        for record in self._state.users.values():
            if name_or_id in (record.user.name, record.user.id) and record.revoked_at is None:
                record.revoked_at = datetime.now(UTC)
                return True
        return False
