"""Each gateway's desired agent version and rollout waves (#25).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 04:40:00.000000
"""

from __future__ import annotations

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
