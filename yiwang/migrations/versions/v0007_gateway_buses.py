"""Gateway buses in the registry, and where each device sits on its bus (unit, poll interval).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 02:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "registry_buses",
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("port", sa.String(length=200), nullable=True),
        sa.Column("host", sa.String(length=253), nullable=True),
        sa.Column("tcp_port", sa.Integer(), nullable=True),
        sa.Column("baudrate", sa.Integer(), nullable=False),
        sa.Column("parity", sa.String(length=1), nullable=False),
        sa.Column("bytesize", sa.Integer(), nullable=False),
        sa.Column("stopbits", sa.Integer(), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id", "gateway_id"], ["registry_gateways.community_id", "registry_gateways.id"]
        ),
        sa.PrimaryKeyConstraint("community_id", "gateway_id", "id"),
    )
    with op.batch_alter_table("registry_devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bus_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("unit", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("poll_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("options", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registry_devices", schema=None) as batch_op:
        batch_op.drop_column("options")
        batch_op.drop_column("poll_s")
        batch_op.drop_column("unit")
        batch_op.drop_column("bus_id")
    op.drop_table("registry_buses")
