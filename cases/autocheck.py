"""核查 without a visit: a sensor case whose alerts all stayed clear passes its check by itself.

Whether a case's signals are clear is the alert engine's knowledge, not the case domain's: the alert
service hands its judgement in as a :class:`SignalsClear` (``alerts.intake.alerts_clear``). This
module decides when a case is checked; :func:`cases.actions.pass_check` checks and passes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from cases.actions import pass_check
from cases.models import Case, CaseState
from cases.policy import CasePolicy


class SignalsClear(Protocol):
    def __call__(self, session: Session, case_id: int, now: datetime, settle: timedelta) -> int | None:
        """How many signals of the case have all stayed clear for ``settle``; None while any has not."""


class AutoCheck:
    """核查 without a visit: a sensor case in FEEDBACK whose alerts have all stayed resolved for
    ``settle`` passes its check automatically, recorded as such."""

    def __init__(
        self,
        db: Engine,
        policy: CasePolicy,
        signals_clear: SignalsClear,
        settle: timedelta = timedelta(minutes=30),
        communities: Iterable[str] | None = None,
    ) -> None:
        self._db, self._policy, self._settle = db, policy, settle
        self._signals_clear = signals_clear
        self._communities = list(communities) if communities is not None else None

    def scan(self, now: datetime | None = None) -> list[int]:
        now = now or datetime.now(UTC)
        passed: list[int] = []
        with Session(self._db) as session, session.begin():
            query = select(Case).where(Case.state == CaseState.FEEDBACK.value, Case.source == "sensor")
            if self._communities is not None:
                query = query.where(Case.community.in_(self._communities))
            for case in session.scalars(query.options(selectinload(Case.events))):
                clear = self._signals_clear(session, case.id, now, self._settle)
                if not clear:
                    continue
                note = f"all {clear} alert(s) clear for {self._settle} — auto check"
                pass_check(session, self._policy, case, note=note, actor="system:autocheck", now=now)
                passed.append(case.id)
        return passed
