"""Return visits (回访) and in-app notifications (#22): every visit attempt, every showing of a
reporter's phone number, and the bell's notifications per user.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "visit_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_visit_attempts_case_id", "visit_attempts", ["case_id"], unique=False)
    op.create_table(
        "reporter_phone_views",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("viewer", sa.String(length=128), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reporter_phone_views_at", "reporter_phone_views", ["at"], unique=False)
    op.create_index("ix_reporter_phone_views_case_id", "reporter_phone_views", ["case_id"], unique=False)
    op.create_table(
        "inapp_notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username", "event_id", name="uq_inapp_notifications_user_event"),
    )
    op.create_index("ix_inapp_notifications_created_at", "inapp_notifications", ["created_at"], unique=False)
    op.create_index("ix_inapp_notifications_user_id", "inapp_notifications", ["username", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_inapp_notifications_user_id", table_name="inapp_notifications")
    op.drop_index("ix_inapp_notifications_created_at", table_name="inapp_notifications")
    op.drop_table("inapp_notifications")
    op.drop_index("ix_reporter_phone_views_case_id", table_name="reporter_phone_views")
    op.drop_index("ix_reporter_phone_views_at", table_name="reporter_phone_views")
    op.drop_table("reporter_phone_views")
    op.drop_index("ix_visit_attempts_case_id", table_name="visit_attempts")
    op.drop_table("visit_attempts")
