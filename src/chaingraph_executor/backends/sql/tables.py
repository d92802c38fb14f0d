"""The application tables (SQLAlchemy Core). ``migrations/versions`` creates exactly these; a test
compares the two."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from chaingraph_executor.backends.sql.columns import JsonDocument, UtcDateTime

metadata = MetaData()

flows = Table(
    "chaingraph_flows",
    metadata,
    Column("id", Text, primary_key=True),
    Column("owner_id", Text, nullable=False),
    Column("name", Text, nullable=False, server_default=""),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("data", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_chaingraph_flows_updated", "updated_at", "id"),
    Index("ix_chaingraph_flows_owner_updated", "owner_id", "updated_at", "id"),
)

flow_versions = Table(
    "chaingraph_flow_versions",
    metadata,
    Column("flow_id", Text, ForeignKey("chaingraph_flows.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("flow_id", "version", name="pk_chaingraph_flow_versions"),
)

executions = Table(
    "chaingraph_executions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("flow_id", Text, nullable=False),
    Column("owner_id", Text, nullable=False),
    Column("root_execution_id", Text),
    Column("parent_execution_id", Text),
    Column("status", Text, nullable=False, server_default="created"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("completed_at", UtcDateTime),
    Column("error_message", Text),
    Column("error_node_id", Text),
    Column("execution_depth", Integer, nullable=False, server_default="0"),
    Column("options", JsonDocument),
    Column("integration", JsonDocument),
    Column("external_events", JsonDocument),
    Column("flow_version", Integer, nullable=False, server_default="1"),
    Column("outputs", JsonDocument),
    Column("event_name", Text),
    Column("control_state", Text, nullable=False, server_default="run"),
    Column("control_reason", Text),
    Column("control_breakpoints", JsonDocument),
    Column("control_step_seq", Integer, nullable=False, server_default="0"),
    Column("control_version", Integer, nullable=False, server_default="0"),
    Index("ix_chaingraph_executions_flow_depth_created", "flow_id", "execution_depth", "created_at"),
    Index("ix_chaingraph_executions_root", "root_execution_id"),
    Index("ix_chaingraph_executions_parent", "parent_execution_id"),
    Index("ix_chaingraph_executions_status", "status"),
)

events = Table(
    "chaingraph_events",
    metadata,
    Column("execution_id", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("type", Text, nullable=False),
    Column("ts", UtcDateTime, nullable=False),
    Column("data", Text, nullable=False),
    PrimaryKeyConstraint("execution_id", "seq", name="pk_chaingraph_events"),
)

users = Table(
    "chaingraph_users",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("is_admin", Boolean, nullable=False, server_default=false()),
    Column("token_hash", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    UniqueConstraint("name", name="uq_chaingraph_users_name"),
    UniqueConstraint("token_hash", name="uq_chaingraph_users_token_hash"),
)

workers = Table(
    "chaingraph_workers",
    metadata,
    Column("executor_id", Text, primary_key=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
    Column("info", JsonDocument),
)
