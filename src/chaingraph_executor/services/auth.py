"""Users and tokens: tokens are printed once at creation and stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets

from chaingraph_executor.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from chaingraph_executor.ports import User, UserStore
from chaingraph_executor.services.executions import Principal

DEV_PRINCIPAL = Principal("dev", is_admin=True)
TOKEN_PREFIX = "cgx_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    def __init__(self, users: UserStore, *, dev_mode: bool) -> None:
        self.users = users
        self.dev_mode = dev_mode

    async def authenticate(self, token: str | None) -> Principal | None:
        """The principal of a token; ``None`` for no token. Raises on a bad or revoked token."""
        if self.dev_mode:
            return DEV_PRINCIPAL
        if not token:
            return None
        user = await self.users.by_token_hash(hash_token(token))
        if user is None or user.revoked:
            raise Unauthenticated("Invalid or revoked token")
        return Principal(user.id, is_admin=user.is_admin)

    async def add_user(self, name: str, *, is_admin: bool = False) -> tuple[User, str]:
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("user name must be 1 to 100 characters", path="name")
        if any(u.name == name for u in await self.users.list()):
            raise Conflict(f"user '{name}' already exists")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        user = await self.users.add(name, is_admin=is_admin, token_hash=hash_token(token))
        return user, token

    async def revoke(self, name_or_id: str) -> None:
        if not await self.users.revoke(name_or_id):
            raise NotFound(f"no user '{name_or_id}'")

    async def list_users(self) -> list[User]:
        return await self.users.list()
