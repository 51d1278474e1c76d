"""Alert transitions → grid cases: open a case, or join the open one of the same grid and category.

This is the hand-off between the alert engine and the case workflow: ``CaseBook.apply`` takes the
engine's transitions and records, in one transaction, the alert's current state, its history and
what it means for the case (opened, joined, data missing, resolved, self-recovered, flapping).
It decides which case an alert concerns and what happened to it; :mod:`cases.actions` makes the change.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session, selectinload

from alerts.engine import Transition
from alerts.models import Alert, AlertHistory, EngineCheckpoint
from cases import actions
from cases.models import OPEN_STATES, Case, CaseState
from cases.policy import CasePolicy
from common.db import EncodedJSON

log = logging.getLogger(__name__)
ACTOR = "system:alerts"
CASE_NOTES = {
    "unknown": ("alert_unknown", "data stopped: {rule} on {subject} cannot be judged (not resolved)"),
    "flapping": ("alert_flapping", "{rule} on {subject} is flapping: kept firing until it settles"),
}
# A gateway alert resolves whenever the gateway is online in fact; flapping keeps its re-fires quiet.
GATEWAY_FLAPPING_NOTE = "{rule} on {subject} is flapping: until it settles, it goes on in this case quietly"


def _ms_to_dt(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


class CaseBook:
    def __init__(
        self,
        db: Engine,
        policy: CasePolicy,
        join_window: timedelta,
        reopen_within: timedelta = timedelta(days=7),
    ) -> None:
        self.db = db
        self._db, self._policy, self._join_window = db, policy, join_window
        self._reopen_within = reopen_within

    def apply(self, transitions: list[Transition], now: datetime | None = None) -> list[int]:
        """Record transitions in one transaction; returns the ids of cases opened or joined."""
        now = now or datetime.now(UTC)
        touched: list[int] = []
        with Session(self._db) as session, session.begin():
            # One query for the batch's alerts, not one per transition: a load burst commits
            # hundreds of transitions at once, and each get() that misses is a round trip.
            fingerprints = {tr.fingerprint for tr in transitions}
            batch = select(Alert).where(Alert.fingerprint.in_(fingerprints))
            known = {a.fingerprint: a for a in session.scalars(batch)}
            for tr in transitions:
                case_id = self._record(session, tr, now, known)
                if case_id is not None:
                    touched.append(case_id)
        return touched

    def load_checkpoint(self, partition: str) -> dict[str, Any] | None:
        with Session(self._db) as session:
            row = session.get(EngineCheckpoint, partition)
            return row.state if row else None

    def save_checkpoint(self, partition: str, state: dict[str, Any] | EncodedJSON) -> None:
        """Replace the partition's checkpoint without reading the old one (megabytes to decode)."""
        now = datetime.now(UTC)
        with self._db.begin() as conn:
            saved = update(EngineCheckpoint).where(EngineCheckpoint.partition == partition)
            if not conn.execute(saved.values(saved_at=now, state=state)).rowcount:
                conn.execute(insert(EngineCheckpoint).values(partition=partition, saved_at=now, state=state))

    def _record(self, session: Session, tr: Transition, now: datetime, known: dict[str, Alert]) -> int | None:
        alert = known.get(tr.fingerprint)
        if alert is None:
            alert = Alert(
                fingerprint=tr.fingerprint,
                rule_id=tr.rule.id,
                community=tr.subject.community.id,
                grid=tr.subject.grid,
                subject=tr.subject.key,
                category=tr.rule.category,
                severity=tr.rule.severity,
                status="inactive",
                started_at=_ms_to_dt(tr.ts_ms),
                updated_at=now,
            )
            session.add(alert)
            known[tr.fingerprint] = alert
        history = AlertHistory(
            fingerprint=tr.fingerprint,
            rule_id=tr.rule.id,
            rule_version=tr.rule.version,
            kind=tr.kind,
            at=now,
            observed_at=_ms_to_dt(tr.ts_ms),
            silenced=tr.silenced,
            inhibited=tr.inhibited,
        )
        case_id = self._apply_to_case(session, alert, tr, now, history)
        alert.updated_at, alert.silenced, alert.inhibited = now, tr.silenced, tr.inhibited
        history.case_id = alert.case_id
        session.add(history)
        return case_id

    def _apply_to_case(
        self, session: Session, alert: Alert, tr: Transition, now: datetime, history: AlertHistory
    ) -> int | None:
        if tr.kind == "pending":
            alert.status, alert.started_at = "pending", _ms_to_dt(tr.ts_ms)
            return None
        if tr.kind == "cancelled":
            alert.status = "inactive"
            return None
        if tr.kind == "firing":
            return self._fire(session, alert, tr, now, history)
        case = session.get(Case, alert.case_id) if alert.case_id is not None else None
        if tr.kind == "resolved":
            if alert.status == "resolved":
                return None  # redelivered
            alert.status, alert.resolved_at, alert.flapping = "resolved", _ms_to_dt(tr.ts_ms), tr.flapping
            if case is None:
                return None
            # The condition cleared, but a person still closes the case: the water may be back tomorrow.
            self_recovered = case.state == CaseState.NEW
            history.self_recovered = self_recovered
            note = f"{tr.rule.id} cleared on {tr.subject.key}" + (
                " before anyone acted (self-recovered)" if self_recovered else ""
            )
            actions.record(session, case, action="alert_resolved", note=note, actor=ACTOR, now=now)
            return case.id
        if tr.kind == "unknown":
            alert.status = "unknown"
        if tr.kind == "flapping":
            alert.flapping = True
        if case is not None and tr.kind in CASE_NOTES:
            action, template = CASE_NOTES[tr.kind]
            if tr.kind == "flapping" and tr.rule.gateway_offline is not None:
                template = GATEWAY_FLAPPING_NOTE
            note = template.format(rule=tr.rule.id, subject=tr.subject.key)
            actions.record(session, case, action=action, note=note, actor=ACTOR, now=now)
            return case.id
        return None

    def _fire(
        self, session: Session, alert: Alert, tr: Transition, now: datetime, history: AlertHistory
    ) -> int | None:
        was = alert.status
        if was == "resolved" and alert.resolved_at is not None and _ms_to_dt(tr.ts_ms) < alert.resolved_at:
            return None  # a breach from before the recorded resolution, redelivered after a crash
        alert.status, alert.resolved_at = "firing", None
        if was != "firing":
            alert.started_at = _ms_to_dt(tr.ts_ms)
        if not tr.opens_case:
            return None  # silenced or inhibited: recorded, no case
        case = session.get(Case, alert.case_id) if alert.case_id is not None else None
        still_open = case is not None and case.state in {s.value for s in OPEN_STATES}
        if case is not None and was == "firing" and not alert.silenced:
            return None  # redelivered after a crash, or the same incident going on
        if case is not None and still_open and was == "resolved" and tr.flapping:
            return None  # a flapping alert firing again: the same incident, already in its case
        if case is not None and still_open and was == "unknown" and not alert.silenced:
            # Its data is back and still breaching: the reading goes into the case as evidence.
            note = f"data from {tr.subject.key} is back, still firing"
            actions.record(session, case, action="alert_data_back", note=note, actor=ACTOR, now=now)
            self._evidence(session, case, tr)
            return case.id
        fired = f"{tr.rule.id} fired on {tr.subject.key}"
        if (case := self._recurrence(session, alert, tr, now)) is not None:
            action = "alert_recurred"
            actions.record(session, case, action=action, note=fired, actor=ACTOR, now=now)
        elif (case := self._open_case(session, tr)) is not None:
            action = "alert_joined"
            actions.join(session, case, action=action, note=fired, actor=ACTOR, now=now)
        else:
            action = "opened"
            case = self._new_case(session, tr, fired, now)
            history.opened_case = True
        self._evidence(session, case, tr)
        session.flush()
        alert.case_id = case.id
        log.info("case %s %s: %s fired on %s", case.id, action, tr.rule.id, tr.subject.key)
        return case.id

    def _evidence(self, session: Session, case: Case, tr: Transition) -> None:
        """What the alert saw when it fired: its observation and the readings window before it."""
        actions.add_evidence(
            session,
            case,
            alert_fingerprint=tr.fingerprint,
            rule_id=tr.rule.id,
            rule_version=tr.rule.version,
            device=tr.subject.key,
            building=tr.subject.building,
            location=tr.subject.location,
            observed=tr.observed,
            observed_at=_ms_to_dt(tr.ts_ms),
            readings=tr.readings,
        )

    def _recurrence(self, session: Session, alert: Alert, tr: Transition, now: datetime) -> Case | None:
        """The same alert firing again soon after its case was closed reopens that case (返工)."""
        if alert.case_id is None:
            return None
        previous = session.get(Case, alert.case_id, options=[selectinload(Case.events)])
        closed = previous is not None and previous.state in (
            CaseState.CLOSED.value,
            CaseState.RETURN_VISIT.value,
        )
        if (
            not closed
            or previous is None
            or previous.closed_at is None
            or now - previous.closed_at > self._reopen_within
        ):
            return None
        actions.reopen_on_recurrence(
            session,
            self._policy,
            previous,
            alert=tr.fingerprint,
            actor=ACTOR,
            note=f"{tr.rule.id} fired again on {tr.subject.key}",
            now=now,
        )
        return previous

    def _open_case(self, session: Session, tr: Transition) -> Case | None:
        since = _ms_to_dt(tr.ts_ms) - self._join_window
        return actions.open_case_for(
            session, tr.subject.community.id, tr.subject.grid, tr.rule.category, since
        )

    def _new_case(self, session: Session, tr: Transition, note: str, now: datetime) -> Case:
        category = self._policy.categories[tr.rule.category]
        subject = tr.subject
        building = next(
            (b.name for g in subject.community.grids for b in g.buildings if b.id == subject.building), ""
        )
        return actions.open_case(
            session,
            self._policy,
            community=subject.community.id,
            grid=subject.grid,
            category=category.code,
            title=f"{category.name_zh}：{building} {subject.location}".strip(),
            source="sensor",
            severity=tr.rule.severity,
            actor=ACTOR,
            action="opened",
            note=note,
            now=now,
        )


def alerts_clear(session: Session, case_id: int, now: datetime, settle: timedelta) -> int | None:
    """How many alerts the case has, when all of them have been resolved for ``settle``; else None.

    The alert service's answer to :class:`cases.autocheck.SignalsClear`.
    """
    alerts = session.scalars(select(Alert).where(Alert.case_id == case_id)).all()
    settled = all(
        a.status == "resolved" and a.resolved_at is not None and now - a.resolved_at >= settle for a in alerts
    )
    return len(alerts) if alerts and settled else None
