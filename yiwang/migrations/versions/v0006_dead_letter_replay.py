"""Dead letters an operator can replay: the mark the API sets and what ingest made of it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_dead_letters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replay_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("replay_outcome", sa.String(length=16), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_ingest_dead_letters_replay_requested_at"), ["replay_requested_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ingest_dead_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_dead_letters_replay_requested_at"))
        batch_op.drop_column("replay_outcome")
        batch_op.drop_column("replayed_at")
        batch_op.drop_column("replay_requested_at")
