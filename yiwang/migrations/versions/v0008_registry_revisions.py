"""Per-community registry revisions, so a reload re-reads only the communities that changed (#21).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 04:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # 0 for the communities already there: a service starting on this database reads them all anyway.
    with op.batch_alter_table("registry_communities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("registry_communities", schema=None) as batch_op:
        batch_op.drop_column("revision")
