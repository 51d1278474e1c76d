"""Reading alerts for people: the API's paged list and the console's page of live alerts.

The jurisdiction is decided by the caller (``api/scope.py``) and passed in as a SQL clause over
``Alert.community`` and ``Alert.grid``; this module only builds and runs the queries.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.orm import Session

from alerts.models import Alert

LIVE = ("firing", "pending", "unknown")


def page_of_alerts(
    db: Engine,
    area: ColumnElement[bool],
    *,
    statuses: Sequence[str] | None,
    limit: int,
    offset: int,
) -> tuple[list[Alert], int]:
    """Alerts in ``area`` (of ``statuses`` when given), most recently changed first; and their total."""
    query = select(Alert).where(area)
    if statuses:
        query = query.where(Alert.status.in_(statuses))
    with Session(db) as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = list(session.scalars(query.order_by(Alert.updated_at.desc()).limit(limit).offset(offset)))
    return rows, total


def live_alerts(db: Engine, area: ColumnElement[bool], limit: int = 500) -> list[Alert]:
    """Firing, pending and unknown alerts in ``area``, most recently changed first."""
    with Session(db) as session:
        return list(
            session.scalars(
                select(Alert)
                .where(Alert.status.in_(LIVE), area)
                .order_by(Alert.updated_at.desc())
                .limit(limit)
            )
        )
