"""Case categories stored as data: names in both languages, SLA per urgency, the department (#28).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 04:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "case_categories",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("sla_hours", sa.JSON(), nullable=False),
        sa.Column("accept_minutes", sa.Float(), nullable=False),
        sa.Column("sign_minutes", sa.Float(), nullable=False),
        sa.Column("clock", sa.String(length=16), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )


def downgrade() -> None:
    op.drop_table("case_categories")
