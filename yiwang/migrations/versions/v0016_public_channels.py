"""Public reporting channels: per-channel keys for residents' reports (#22).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "public_channels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("communities", sa.JSON(), nullable=False),
        sa.Column("town", sa.String(length=64), nullable=True),
        sa.Column("serves_page", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("key_digest"),
    )
    op.create_table(
        "public_requests",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("building", sa.String(length=64), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["channel_id"], ["public_channels.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_index("ix_public_requests_channel_id", "public_requests", ["channel_id"])


def downgrade() -> None:
    op.drop_index("ix_public_requests_channel_id", table_name="public_requests")
    op.drop_table("public_requests")
    op.drop_table("public_channels")
