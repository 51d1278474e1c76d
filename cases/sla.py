"""SLA clocks: warn at 80 % of a stage, and on a breach issue a supervision order (督办).

The first breach of a case addresses the unit that holds it; any later breach escalates to that
unit's leader (level 2). Breaches count against the unit: the department while a district
department holds a called-up case, otherwise the owning town. This module decides when and to whom;
:mod:`cases.actions` issues the order and the warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cases.actions import supervise, warn_stage
from cases.models import Case, CaseState
from cases.policy import CasePolicy

log = logging.getLogger(__name__)
WARN_AT = 0.8
ACTOR = "system:sla"
PAUSED = frozenset({CaseState.SUSPENDED.value})


def _unit(case: Case) -> str:
    if case.state == CaseState.CALLED_UP.value and case.department:
        return case.department
    return case.owner_town or case.community


class SlaMonitor:
    def __init__(self, db: Engine, policy: CasePolicy, communities: Iterable[str] | None = None) -> None:
        self._db, self._policy = db, policy
        self._communities = list(communities) if communities is not None else None

    def scan(self, now: datetime | None = None) -> int:
        """Warn and supervise every case whose stage clock says so; returns the events written."""
        now = now or datetime.now(UTC)
        written = 0
        with Session(self._db) as session, session.begin():
            query = select(Case).where(Case.stage_due.is_not(None), Case.state.not_in(PAUSED))
            if self._communities is not None:
                query = query.where(Case.community.in_(self._communities))
            for case in session.scalars(query.with_for_update(skip_locked=True)):
                written += self._check(session, case, now)
        return written

    def _check(self, session: Session, case: Case, now: datetime) -> int:
        assert case.stage_due is not None
        started = case.stage_started_at or case.opened_at
        clock = self._policy.clock(case.category)
        allowed = clock.between(started, case.stage_due).total_seconds()
        used = clock.between(started, now).total_seconds()
        if now >= case.stage_due:
            level = 1 if case.breaches == 0 else 2  # supervise() counts this breach
            unit = _unit(case)
            leader = self._policy.organisation.leader_of(unit) or f"leader of {unit}"
            addressed = (case.assignee or unit) if level == 1 else leader
            supervise(session, case, level=level, addressed_to=addressed, unit=unit, actor=ACTOR, now=now)
            log.warning(
                "case %s: %s overdue, supervision order level %d to %s", case.id, case.stage, level, addressed
            )
            return 1
        if not case.stage_warned and allowed > 0 and used >= WARN_AT * allowed:
            warn_stage(session, case, note=f"{case.stage}: 80 % of the time used", actor=ACTOR, now=now)
            return 1
        return 0
