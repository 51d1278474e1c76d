"""The registry: towns, communities, grids, buildings, gateways and devices as data.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 01:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "registry_towns",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("district", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "registry_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "registry_communities",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("town_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["town_id"], ["registry_towns.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("registry_communities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_communities_town_id"), ["town_id"], unique=False)
    op.create_table(
        "registry_devices",
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=96), nullable=False),
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("grid_id", sa.String(length=64), nullable=False),
        sa.Column("building_id", sa.String(length=64), nullable=True),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("installed", sa.Date(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["community_id"], ["registry_communities.id"]),
        sa.PrimaryKeyConstraint("community_id", "id"),
    )
    with op.batch_alter_table("registry_devices", schema=None) as batch_op:
        batch_op.create_index("ix_registry_devices_gateway", ["community_id", "gateway_id"], unique=False)
        batch_op.create_index("ix_registry_devices_grid", ["community_id", "grid_id"], unique=False)
    op.create_table(
        "registry_gateways",
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["community_id"], ["registry_communities.id"]),
        sa.PrimaryKeyConstraint("community_id", "id"),
    )
    op.create_table(
        "registry_grids",
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("polygon", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["community_id"], ["registry_communities.id"]),
        sa.PrimaryKeyConstraint("community_id", "id"),
    )
    op.create_table(
        "registry_buildings",
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("grid_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("polygon", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id", "grid_id"], ["registry_grids.community_id", "registry_grids.id"]
        ),
        sa.PrimaryKeyConstraint("community_id", "id"),
    )


def downgrade() -> None:
    op.drop_table("registry_buildings")
    op.drop_table("registry_grids")
    op.drop_table("registry_gateways")
    with op.batch_alter_table("registry_devices", schema=None) as batch_op:
        batch_op.drop_index("ix_registry_devices_grid")
        batch_op.drop_index("ix_registry_devices_gateway")
    op.drop_table("registry_devices")
    with op.batch_alter_table("registry_communities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_communities_town_id"))
    op.drop_table("registry_communities")
    op.drop_table("registry_version")
    op.drop_table("registry_towns")
