"""Column types that behave the same on SQLite and PostgreSQL: UTC-aware timestamps and JSON
documents that keep datetimes and errors (via the domain's JSON-safe form)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

from chaingraph_executor.backends.common import as_utc
from chaingraph_executor.domain.events import from_json_safe, to_json_safe


class UtcDateTime(TypeDecorator[datetime]):
    """``timestamptz`` on PostgreSQL; naive UTC text on SQLite (so it sorts); always aware UTC in Python."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:
            return value
        return as_utc(value)


class JsonDocument(TypeDecorator[Any]):
    """JSON (``jsonb`` on PostgreSQL) holding the domain's JSON-safe form; SQL NULL for ``None``."""

    impl = JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else to_json_safe(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else from_json_safe(value)
