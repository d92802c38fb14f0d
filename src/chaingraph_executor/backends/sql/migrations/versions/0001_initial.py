"""Initial schema: flows and their versions, executions (upstream's columns plus flow version,
outputs and the control channel), events, users and workers.

Revision ID: 0001
Revises:
Create Date: 2025-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "chaingraph_flows",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False, server_default=""),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
    )
    op.create_index("ix_chaingraph_flows_updated", "chaingraph_flows", ["updated_at", "id"])
    op.create_index("ix_chaingraph_flows_owner_updated", "chaingraph_flows", ["owner_id", "updated_at", "id"])

    op.create_table(
        "chaingraph_flow_versions",
        sa.Column(
            "flow_id",
            sa.Text(),
            sa.ForeignKey("chaingraph_flows.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("flow_id", "version", name="pk_chaingraph_flow_versions"),
    )

    op.create_table(
        "chaingraph_executions",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("flow_id", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("root_execution_id", sa.Text()),
        sa.Column("parent_execution_id", sa.Text()),
        sa.Column("status", sa.Text(), nullable=False, server_default="created"),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("started_at", _ts()),
        sa.Column("completed_at", _ts()),
        sa.Column("error_message", sa.Text()),
        sa.Column("error_node_id", sa.Text()),
        sa.Column("execution_depth", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("options", _json()),
        sa.Column("integration", _json()),
        sa.Column("external_events", _json()),
        sa.Column("flow_version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("outputs", _json()),
        sa.Column("event_name", sa.Text()),
        sa.Column("control_state", sa.Text(), nullable=False, server_default="run"),
        sa.Column("control_reason", sa.Text()),
        sa.Column("control_breakpoints", _json()),
        sa.Column("control_step_seq", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("control_version", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index(
        "ix_chaingraph_executions_flow_depth_created",
        "chaingraph_executions",
        ["flow_id", "execution_depth", "created_at"],
    )
    op.create_index("ix_chaingraph_executions_root", "chaingraph_executions", ["root_execution_id"])
    op.create_index("ix_chaingraph_executions_parent", "chaingraph_executions", ["parent_execution_id"])
    op.create_index("ix_chaingraph_executions_status", "chaingraph_executions", ["status"])

    op.create_table(
        "chaingraph_events",
        sa.Column("execution_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("ts", _ts(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("execution_id", "seq", name="pk_chaingraph_events"),
    )

    op.create_table(
        "chaingraph_users",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("revoked_at", _ts()),
        sa.UniqueConstraint("name", name="uq_chaingraph_users_name"),
        sa.UniqueConstraint("token_hash", name="uq_chaingraph_users_token_hash"),
    )

    op.create_table(
        "chaingraph_workers",
        sa.Column("executor_id", sa.Text(), primary_key=True),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("heartbeat_at", _ts(), nullable=False),
        sa.Column("info", _json()),
    )


def downgrade() -> None:
    for table in (
        "chaingraph_workers",
        "chaingraph_users",
        "chaingraph_events",
        "chaingraph_executions",
        "chaingraph_flow_versions",
        "chaingraph_flows",
    ):
        op.drop_table(table)
