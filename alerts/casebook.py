"""Alert transitions → grid cases: open a case, or join the open one of the same grid and category."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.engine import Transition
from alerts.models import OPEN_STATES, Alert, Base, Case, CaseEvent, CaseState, Evidence
from alerts.rules import Category

log = logging.getLogger(__name__)
ACTOR = "system:alerts"


def create_schema(engine: Engine) -> None:
    Base.metadata.create_all(engine)


def _ms_to_dt(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


class CaseBook:
    def __init__(self, engine: Engine, categories: dict[str, Category], join_window: timedelta) -> None:
        self._engine, self._categories, self._join_window = engine, categories, join_window

    def firing_fingerprints(self) -> list[str]:
        with Session(self._engine) as session:
            return list(session.scalars(select(Alert.fingerprint).where(Alert.status == "firing")))

    def apply(self, transitions: list[Transition], now: datetime | None = None) -> list[int]:
        """Record transitions in one transaction; returns the ids of cases opened or joined."""
        now = now or datetime.now(UTC)
        touched: list[int] = []
        with Session(self._engine) as session, session.begin():
            for tr in transitions:
                case_id = (
                    self._fire(session, tr, now) if tr.status == "firing" else self._resolve(session, tr, now)
                )
                if case_id is not None:
                    touched.append(case_id)
        return touched

    def _fire(self, session: Session, tr: Transition, now: datetime) -> int | None:
        alert = session.get(Alert, tr.fingerprint)
        if alert is not None and alert.status == "firing":
            return None  # redelivered after a crash: this transition is already recorded
        case = self._open_case(session, tr)
        if case is None:
            case = self._new_case(session, tr, now)
            action, note = "opened", f"{tr.rule.id} fired on {tr.info.device.id}"
        else:
            action, note = "alert_joined", f"{tr.rule.id} fired on {tr.info.device.id}"
            case.updated_at = now
        session.add(
            CaseEvent(
                case=case, at=now, actor=ACTOR, action=action, from_state=None, to_state=case.state, note=note
            )
        )
        session.add(
            Evidence(
                case=case,
                alert_fingerprint=tr.fingerprint,
                rule_id=tr.rule.id,
                rule_version=tr.rule.version,
                device=tr.info.device.id,
                building=tr.info.device.building,
                location=tr.info.device.location,
                observed=dict(tr.observed),
                observed_at=_ms_to_dt(tr.ts_ms),
            )
        )
        session.flush()
        if alert is None:
            alert = Alert(fingerprint=tr.fingerprint, rule_id=tr.rule.id, device=tr.info.device.id)
            session.add(alert)
        alert.status, alert.started_at, alert.resolved_at, alert.case_id = (
            "firing",
            _ms_to_dt(tr.ts_ms),
            None,
            case.id,
        )
        log.info("case %s %s: %s", case.id, action, note)
        return case.id

    def _resolve(self, session: Session, tr: Transition, now: datetime) -> int | None:
        alert = session.get(Alert, tr.fingerprint)
        if alert is None or alert.status != "firing":
            return None
        alert.status, alert.resolved_at = "resolved", _ms_to_dt(tr.ts_ms)
        if alert.case_id is None:
            return None
        # The condition cleared, but a person still closes the case: the water may be back tomorrow.
        session.add(
            CaseEvent(
                case_id=alert.case_id,
                at=now,
                actor=ACTOR,
                action="alert_resolved",
                from_state=None,
                to_state=None,
                note=f"{tr.rule.id} cleared on {tr.info.device.id}",
            )
        )
        return alert.case_id

    def _open_case(self, session: Session, tr: Transition) -> Case | None:
        since = _ms_to_dt(tr.ts_ms) - self._join_window
        return session.scalars(
            select(Case)
            .where(
                Case.community == tr.info.community.id,
                Case.grid == tr.info.device.grid,
                Case.category == tr.rule.category,
                Case.state.in_([s.value for s in OPEN_STATES]),
                Case.updated_at >= since,
            )
            .order_by(Case.id.desc())
            .limit(1)
        ).first()

    def _new_case(self, session: Session, tr: Transition, now: datetime) -> Case:
        category = self._categories[tr.rule.category]
        info = tr.info
        building = next(
            (b.name for g in info.community.grids for b in g.buildings if b.id == info.device.building), ""
        )
        case = Case(
            community=info.community.id,
            grid=info.device.grid,
            category=category.code,
            state=CaseState.NEW.value,
            title=f"{category.name_zh}：{building} {info.device.location}".strip(),
            source="sensor",
            severity=tr.rule.severity,
            opened_at=now,
            deadline=now + timedelta(hours=category.sla_hours),
            updated_at=now,
        )
        session.add(case)
        return case
