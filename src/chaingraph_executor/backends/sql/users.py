"""``SqlUserStore``: API users and their hashed tokens in ``chaingraph_users``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, exc, insert, or_, select, update

from chaingraph_executor.backends.sql.database import Database
from chaingraph_executor.backends.sql.tables import users
from chaingraph_executor.domain.ids import random_id
from chaingraph_executor.errors import Conflict
from chaingraph_executor.ports import User


def to_user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        name=row.name,
        is_admin=bool(row.is_admin),
        created_at=row.created_at,
        revoked=row.revoked_at is not None,
    )


class SqlUserStore:
    """The user store on SQLite or PostgreSQL. ``by_token_hash`` never returns a revoked user."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, name: str, *, is_admin: bool, token_hash: str) -> User:
        user = User(id=random_id("US"), name=name, is_admin=is_admin, created_at=datetime.now(UTC))
        try:
            async with self._db.begin() as tx:
                await tx.conn.execute(
                    insert(users).values(
                        id=user.id,
                        name=name,
                        is_admin=is_admin,
                        token_hash=token_hash,
                        created_at=user.created_at,
                    )
                )
        except exc.IntegrityError:
            raise Conflict(f"a user named {name!r} (or with this token) already exists") from None
        return user

    async def by_token_hash(self, token_hash: str) -> User | None:
        stmt = select(users).where(users.c.token_hash == token_hash, users.c.revoked_at.is_(None))
        async with self._db.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else to_user(row)

    async def list(self) -> list[User]:
        async with self._db.connect() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.created_at, users.c.name))).all()
        return [to_user(r) for r in rows]

    async def revoke(self, name_or_id: str) -> bool:
        stmt = (
            update(users)
            .where(or_(users.c.name == name_or_id, users.c.id == name_or_id), users.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        async with self._db.begin() as tx:
            result = await tx.conn.execute(stmt)
        return bool(result.rowcount)
