"""Manual supervision orders and their answers (#24): who issued an order and why, when its answer is
due, and the answer. Orders already stored were all automatic: each is due a day after it was issued
(``cases.models.AUTO_ANSWER_WINDOW``), filled in before the column becomes NOT NULL.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 04:40:00.000000
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

AUTO_ANSWER_WINDOW = timedelta(days=1)  # a copy: a revision never imports the models it migrates
BATCH = 5_000


def _fill_due_times() -> None:
    """``due_at`` = ``issued_at`` + a day, in Python: date arithmetic is not portable SQL."""
    orders = sa.table(
        "supervision_orders",
        sa.column("id", sa.Integer),
        sa.column("issued_at", sa.DateTime(timezone=True)),
        sa.column("due_at", sa.DateTime(timezone=True)),
    )
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(orders.c.id, orders.c.issued_at)
            .where(orders.c.id > last)
            .order_by(orders.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        conn.execute(
            orders.update().where(orders.c.id == sa.bindparam("row_id")).values(due_at=sa.bindparam("due")),
            [{"row_id": r.id, "due": r.issued_at + AUTO_ANSWER_WINDOW} for r in rows],
        )
        last = rows[-1].id


def upgrade() -> None:
    with op.batch_alter_table("supervision_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=8), server_default="auto", nullable=False))
        batch_op.add_column(
            sa.Column("issued_by", sa.String(length=128), server_default="system:sla", nullable=False)
        )
        batch_op.add_column(sa.Column("reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("answered_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("answer", sa.String(length=2000), nullable=True))
        batch_op.create_index("ix_supervision_orders_unit_issued", ["unit", "issued_at"], unique=False)
    _fill_due_times()
    with op.batch_alter_table("supervision_orders", schema=None) as batch_op:
        batch_op.alter_column("due_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("supervision_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_supervision_orders_unit_issued")
        batch_op.drop_column("answer")
        batch_op.drop_column("answered_by")
        batch_op.drop_column("answered_at")
        batch_op.drop_column("due_at")
        batch_op.drop_column("reason")
        batch_op.drop_column("issued_by")
        batch_op.drop_column("kind")
