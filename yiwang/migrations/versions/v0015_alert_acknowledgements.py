"""Alerts acknowledged by an operator with a note: acknowledged is not resolved (#23).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "alert_acknowledgements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(length=256), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("alert_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_alert_acknowledgements_fingerprint_at", "alert_acknowledgements", ["fingerprint", "at"]
    )
    op.create_index("ix_alert_acknowledgements_case_id", "alert_acknowledgements", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_acknowledgements_case_id", table_name="alert_acknowledgements")
    op.drop_index("ix_alert_acknowledgements_fingerprint_at", table_name="alert_acknowledgements")
    op.drop_table("alert_acknowledgements")
