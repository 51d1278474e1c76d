"""An alert's transitions (pending, firing, resolved, unknown, ...) for people: per device and per rule.

The jurisdiction is the caller's SQL clause over ``Alert.community`` and ``Alert.grid`` (api/scope.py);
the history rows carry no place, so they are read through their alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, select
from sqlalchemy.orm import Session

from alerts.models import Alert, AlertHistory

HISTORY_LIMIT = 500  # transitions on one page: a flapping sensor writes thousands


@dataclass(frozen=True, slots=True)
class Transition:
    at: datetime
    observed_at: datetime
    kind: str
    rule_id: str
    community: str
    grid: str
    subject: str
    case_id: int | None
    silenced: bool
    inhibited: bool
    self_recovered: bool


def alert_transitions(
    db: Engine,
    area: ColumnElement[bool],
    *,
    community: str | None = None,
    device: str | None = None,
    rule: str | None = None,
    limit: int = HISTORY_LIMIT,
) -> list[Transition]:
    """Transitions of the alerts in ``area`` (of one device, one rule, or both), newest first."""
    query = (
        select(AlertHistory, Alert.community, Alert.grid, Alert.subject)
        .join(Alert, Alert.fingerprint == AlertHistory.fingerprint)
        .where(area)
    )
    if community:
        query = query.where(Alert.community == community)
    if device:
        query = query.where(Alert.subject == device)
    if rule:
        query = query.where(AlertHistory.rule_id == rule)
    query = query.order_by(AlertHistory.at.desc(), AlertHistory.id.desc()).limit(min(limit, HISTORY_LIMIT))
    with Session(db) as session:
        return [
            Transition(
                h.at,
                h.observed_at,
                h.kind,
                h.rule_id,
                str(place),
                str(grid),
                str(subject),
                h.case_id,
                h.silenced,
                h.inhibited,
                h.self_recovered,
            )
            for h, place, grid, subject in session.execute(query)
        ]
