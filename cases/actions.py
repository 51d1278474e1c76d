"""Every change to a case, in one place: opening, events, evidence, workflow actions, SLA orders.

Callers decide *what* happened and *when* — the alert intake which alert means which case, the SLA
monitor and the auto check by their clocks, people through the API — and call these functions for the
change itself, inside a session they own. So a case's append-only log (``CaseEvent``), its evidence
and its supervision orders are written here and nowhere else.

People act through :class:`CaseFlow`, which adds optimistic locking: two operators acting on the
same case at once, the first commit wins, the second gets VersionConflict (HTTP 409) and re-reads —
nothing is silently overwritten. A reported case about the same grid and category as an open case
merges into it, whichever came first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from cases.assignees import check_named_people
from cases.models import OPEN_STATES, Case, CaseEvent, CaseState, Evidence, SupervisionOrder
from cases.organisation import Roster
from cases.policy import CasePolicy
from cases.rosters import current_roster
from cases.workflow import IllegalTransition, InvalidAction, WorkflowError, apply_action


class CaseNotFound(WorkflowError):
    """No such case (HTTP 404)."""


class VersionConflict(IllegalTransition):
    """Someone changed the case since the caller read it (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class Report:
    """A case reported by a person (console, API, Open311 intake)."""

    community: str
    grid: str
    category: str
    description: str
    location: str = ""
    reporter_phone: str | None = None


def open_case_for(session: Session, community: str, grid: str, category: str, since: datetime) -> Case | None:
    """The open case of a grid and category touched since ``since``: new alerts and reports join it."""
    return session.scalars(
        select(Case)
        .where(
            Case.community == community,
            Case.grid == grid,
            Case.category == category,
            Case.state.in_([s.value for s in OPEN_STATES]),
            Case.updated_at >= since,
        )
        .order_by(Case.id.desc())
        .limit(1)
    ).first()


def new_case(
    policy: CasePolicy,
    *,
    community: str,
    grid: str,
    category: str,
    title: str,
    source: str,
    severity: str,
    now: datetime,
) -> Case:
    """A NEW case with its deadlines and owning town, not yet in any session."""
    # A critical alert starts urgent; a person can change that when verifying the case.
    urgency = "urgent" if severity == "critical" else "normal"
    return Case(
        urgency=urgency,
        community=community,
        grid=grid,
        category=category,
        state=CaseState.NEW.value,
        title=title,
        source=source,
        severity=severity,
        opened_at=now,
        updated_at=now,
        deadline=policy.completion_deadline(category, now, urgency),
        owner_town=policy.organisation.town_of(community),
        stage="accept",
        stage_started_at=now,
        stage_due=policy.stage_due(category, "accept", now, urgency),
    )


def open_case(
    session: Session,
    policy: CasePolicy,
    *,
    community: str,
    grid: str,
    category: str,
    title: str,
    source: str,
    severity: str,
    actor: str,
    action: str,
    note: str,
    now: datetime,
    description: str = "",
    reporter_phone: str | None = None,
) -> Case:
    """Add a new case to ``session`` and log how it came (``action``: opened, reported) as its first event.

    The case has no id until the session flushes.
    """
    case = new_case(
        policy,
        community=community,
        grid=grid,
        category=category,
        title=title,
        source=source,
        severity=severity,
        now=now,
    )
    case.description, case.reporter_phone = description, reporter_phone
    session.add(case)
    record(session, case, action=action, note=note, actor=actor, now=now)
    return case


def record(
    session: Session,
    case: Case,
    *,
    action: str,
    note: str,
    actor: str,
    now: datetime,
    data: Mapping[str, Any] | None = None,
) -> CaseEvent:
    """Log something that happened to ``case`` without moving it (an alert cleared, data stopped ...).

    The event has no ``from_state``: it is not a transition. The case's state, clocks and
    ``updated_at`` stay as they are, so a note never keeps a case open for joining (see :func:`join`).
    """
    event = CaseEvent(
        case=case,
        at=now,
        actor=actor,
        action=action,
        from_state=None,
        to_state=case.state,
        note=note,
        data=dict(data or {}),
    )
    session.add(event)
    return event


def join(
    session: Session,
    case: Case,
    *,
    action: str,
    note: str,
    actor: str,
    now: datetime,
    data: Mapping[str, Any] | None = None,
) -> CaseEvent:
    """Log that another alert or report joined ``case``, and touch it: the join window runs from now."""
    case.updated_at = now
    return record(session, case, action=action, note=note, actor=actor, now=now, data=data)


def add_evidence(
    session: Session,
    case: Case,
    *,
    alert_fingerprint: str,
    rule_id: str,
    rule_version: int,
    device: str,
    building: str | None,
    location: str,
    observed: Mapping[str, Any],
    observed_at: datetime,
    readings: Iterable[tuple[int, Any]] = (),
) -> Evidence:
    """Keep what an alert saw when it opened or joined ``case``; the row is never changed afterwards.

    ``readings`` are (ts_ms, value) oldest first; none is stored as NULL, not as an empty window.
    """
    evidence = Evidence(
        case=case,
        alert_fingerprint=alert_fingerprint,
        rule_id=rule_id,
        rule_version=rule_version,
        device=device,
        building=building,
        location=location,
        observed=dict(observed),
        observed_at=observed_at,
        # Copied now, never updated: the case keeps what the engine saw when it fired.
        readings=[[ts, value] for ts, value in readings] or None,
    )
    session.add(evidence)
    return evidence


def act(
    session: Session,
    policy: CasePolicy,
    case: Case,
    action: str,
    *,
    actor: str,
    now: datetime,
    note: str = "",
    params: dict[str, Any] | None = None,
) -> CaseEvent:
    """Move ``case`` by one workflow action (see :data:`cases.workflow.ACTIONS`) and log it.

    Raises IllegalTransition or InvalidAction and changes nothing when the action does not apply.
    No locking: :meth:`CaseFlow.act` adds it for people; system actors hold the row they act on.
    """
    event = apply_action(case, action, actor=actor, now=now, policy=policy, note=note, params=params)
    session.add(event)
    return event


def reopen_on_recurrence(
    session: Session, policy: CasePolicy, case: Case, *, alert: str, actor: str, note: str, now: datetime
) -> CaseEvent:
    """Reopen a closed ``case`` because ``alert`` (its fingerprint) fired again (返工).

    The case must be CLOSED or RETURN_VISIT (else IllegalTransition) and have its events loaded.
    """
    return act(
        session,
        policy,
        case,
        "reopen",
        actor=actor,
        now=now,
        note=note,
        params={"reason": "recurrence", "alert": alert},
    )


def supervise(
    session: Session,
    case: Case,
    *,
    level: int,
    addressed_to: str,
    unit: str,
    actor: str,
    now: datetime,
) -> SupervisionOrder:
    """Issue a supervision order (督办) on the stage of ``case`` that is overdue, and log it.

    Counts the breach against the case and stops the stage's clock: one order per stage, the next
    stage starts its own. ``unit`` is the unit the breach counts against.
    """
    case.breaches += 1
    order = SupervisionOrder(
        case_id=case.id,
        issued_at=now,
        stage=case.stage,
        level=level,
        addressed_to=addressed_to,
        unit=unit,
    )
    session.add(order)
    session.add(
        CaseEvent(
            case=case,
            at=now,
            actor=actor,
            action="supervise",
            from_state=case.state,
            to_state=case.state,
            note=f"{case.stage} overdue: 督办 level {level} to {addressed_to}",
            data={"stage": case.stage, "level": level, "unit": unit},
        )
    )
    case.stage_due = None
    return order


def supervise_manually(
    session: Session,
    case: Case,
    *,
    unit: str,
    reason: str,
    due_at: datetime,
    actor: str,
    now: datetime,
) -> SupervisionOrder:
    """A supervision order a person issues on ``case`` (督办 by hand): ``unit`` must answer by ``due_at``.

    No breach is counted and no clock stops: the case's SLA is the SLA monitor's. The order is noted
    in the case's timeline (``supervise_manual``), with the order's id.
    """
    order = SupervisionOrder(
        case_id=case.id,
        issued_at=now,
        stage=case.stage,
        level=1,
        addressed_to=unit,
        unit=unit,
        kind="manual",
        issued_by=actor,
        reason=reason,
        due_at=due_at,
    )
    session.add(order)
    session.flush()  # the order's id, for the timeline
    record(
        session,
        case,
        action="supervise_manual",
        note=reason,
        actor=actor,
        now=now,
        data={"order": order.id, "unit": unit, "due_at": due_at.isoformat()},
    )
    return order


def answer_supervision(
    session: Session, case: Case, order: SupervisionOrder, *, answer: str, actor: str, now: datetime
) -> None:
    """The target unit's answer to ``order`` (on ``case``), kept on the order and noted in the timeline."""
    order.answer, order.answered_by, order.answered_at = answer, actor, now
    record(
        session,
        case,
        action="supervision_answered",
        note=answer,
        actor=actor,
        now=now,
        data={"order": order.id, "unit": order.unit, "late": now > order.due_at},
    )


def warn_stage(session: Session, case: Case, *, note: str, actor: str, now: datetime) -> CaseEvent:
    """Warn whoever holds ``case`` that its stage is running out of time; once per stage.

    Entering the next stage re-arms the warning (see :func:`cases.workflow.apply_action`).
    """
    case.stage_warned = True
    event = CaseEvent(
        case=case,
        at=now,
        actor=actor,
        action="sla_warning",
        from_state=case.state,
        to_state=case.state,
        note=note,
        data={"stage": case.stage, "assignee": case.assignee or ""},
    )
    session.add(event)
    return event


def pass_check(
    session: Session, policy: CasePolicy, case: Case, *, note: str, actor: str, now: datetime
) -> list[CaseEvent]:
    """Check and pass a case in FEEDBACK without a person (核查 by the system), marked ``auto``.

    Raises IllegalTransition when the case is not in FEEDBACK.
    """
    return [
        act(session, policy, case, action, actor=actor, now=now, note=note, params={"auto": True})
        for action in ("check", "pass")
    ]


class CaseFlow:
    """Cases as people work them: actions with optimistic locking, and cases reported by people."""

    def __init__(
        self,
        db: Engine,
        policy: CasePolicy,
        join_window: timedelta = timedelta(hours=1),
        grid_towns: Mapping[str, str] | None = None,  # grid → town: who may be named on a case
    ) -> None:
        self._db, self._policy, self._join_window = db, policy, join_window
        self._grid_towns = grid_towns

    def act(
        self,
        case_id: int,
        action: str,
        *,
        actor: str,
        expected_version: int | None = None,
        note: str = "",
        params: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Apply one action; returns the case's new version."""
        now = now or datetime.now(UTC)
        try:
            with Session(self._db) as session, session.begin():
                case = session.get(Case, case_id, options=[selectinload(Case.events)])
                if case is None:
                    raise CaseNotFound(f"case {case_id} not found")
                if expected_version is not None and case.version != expected_version:
                    raise VersionConflict(
                        f"case {case_id} is at version {case.version}, not {expected_version}: reload it"
                    )
                if action == "merge":
                    self._check_merge_target(session, case, (params or {}).get("into"))
                if action == "assign" and not (params or {}).get("assignee"):
                    params = self._from_roster(case, params)
                check_named_people(
                    self._policy.organisation, self._roster, case, action, params, self._grid_towns
                )
                act(session, self._policy, case, action, actor=actor, now=now, note=note, params=params)
                session.flush()
                return case.version
        except StaleDataError as err:
            raise VersionConflict(f"case {case_id} was changed by someone else meanwhile: reload it") from err

    def _roster(self, grid: str) -> Roster | None:
        return current_roster(self._db, self._policy.organisation, grid)

    def _from_roster(self, case: Case, params: dict[str, Any] | None) -> dict[str, Any]:
        """Assign without a name: whoever is on duty for the grid (the backup while the primary is away)."""
        roster = current_roster(self._db, self._policy.organisation, case.grid)
        if roster is None:
            raise InvalidAction(f"assign needs assignee: grid {case.grid} has no duty roster")
        return {**(params or {}), "assignee": roster.on_duty(), "from_roster": True}

    @staticmethod
    def _check_merge_target(session: Session, case: Case, into: object) -> None:
        target = session.get(Case, into) if isinstance(into, int) else None
        if target is None or target.id == case.id:
            raise InvalidAction(f"merge needs another existing case as 'into', got {into!r}")
        if target.state not in {s.value for s in OPEN_STATES} or target.community != case.community:
            raise InvalidAction(f"case {target.id} is closed or in another community; cannot merge into it")

    def report(self, report: Report, *, actor: str, now: datetime | None = None) -> tuple[int, int | None]:
        """File a reported case; returns (its id, the case it merged into or None)."""
        now = now or datetime.now(UTC)
        category = self._policy.categories.get(report.category)
        if category is None:
            raise InvalidAction(f"unknown category {report.category!r}")
        with Session(self._db) as session, session.begin():
            existing = open_case_for(
                session, report.community, report.grid, report.category, now - self._join_window
            )
            case = open_case(
                session,
                self._policy,
                community=report.community,
                grid=report.grid,
                category=report.category,
                title=f"{category.name_zh}：{report.location}".rstrip("："),
                source="report",
                severity="warning",
                actor=actor,
                action="reported",
                note=report.description[:500],
                now=now,
                description=report.description,
                reporter_phone=report.reporter_phone,
            )
            session.flush()
            if existing is None:
                return case.id, None
            act(
                session,
                self._policy,
                case,
                "merge",
                actor="system:intake",
                now=now,
                note=f"same grid and category as case {existing.id}",
                params={"into": existing.id},
            )
            join(
                session,
                existing,
                action="report_merged",
                note=f"case {case.id} reported by a resident merged here",
                actor="system:intake",
                now=now,
                data={"case": case.id},
            )
            return case.id, existing.id
