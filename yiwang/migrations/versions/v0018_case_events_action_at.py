"""Case events indexed by kind and time: a quarter's call-ups among ten years of events (#24).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 08:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_events_action"))
        batch_op.create_index("ix_case_events_action_at", ["action", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_index("ix_case_events_action_at")
        batch_op.create_index(batch_op.f("ix_case_events_action"), ["action"], unique=False)
