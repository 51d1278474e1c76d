"""Manual supervision orders and their answers (#24).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 04:40:00.000000
"""

from __future__ import annotations

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
