"""Every change to a case, in one place: opening, events, evidence, workflow actions, SLA orders.

Callers decide *what* happened and *when* — the alert intake which alert means which case, the SLA
monitor and the auto check by their clocks, people through the API — and call these functions for the
change itself, inside a session they own. So a case's append-only log (``CaseEvent``), its evidence
and its supervision orders are written here and nowhere else.

People act through :class:`CaseFlow`, which adds optimistic locking: two operators acting on the
same case at once, the first commit wins, the second gets VersionConflict (HTTP 409) naming who did
what — nothing is silently overwritten. System events (an alert joining, evidence, SLA clocks) also
move the version, but never fail a person's action: a stale version is re-checked against the case as
it is now and applied when no person acted since and the action is still allowed.

A reported case about the same grid and category as an open case merges into it, whichever came first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from cases.assignees import check_named_people
from cases.attachments import check_attachments
from cases.models import OPEN_STATES, Case, CaseEvent, CaseState, Evidence, SupervisionOrder
from cases.organisation import Roster
from cases.policy import CasePolicy
from cases.rosters import current_roster
from cases.workflow import IllegalTransition, InvalidAction, WorkflowError, apply_action


class CaseNotFound(WorkflowError):
    """No such case (HTTP 404)."""


SYSTEM_PREFIX = "system:"  # actors of the intake, the SLA monitor, the auto check ...
VERSION_KEY = "version"  # a person's event keeps the case version it made: the conflict check's anchor
_ATTEMPTS = 3  # a system write racing a person's commit is retried; a person's is a conflict


@dataclass(frozen=True, slots=True)
class Change:
    """Something that happened to a case since the caller read it: who did what, when."""

    actor: str
    action: str
    at: datetime
    to_state: str | None


class VersionConflict(IllegalTransition):
    """Someone changed the case since the caller read it (HTTP 409); ``changes`` says who did what."""

    def __init__(self, case_id: int, expected: int, current: int, changes: Sequence[Change] = ()) -> None:
        self.case_id, self.expected, self.current = case_id, expected, current
        self.changes = tuple(changes)
        done = "; ".join(
            f"{c.actor} did {c.action} at {c.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
            + (f" (now {c.to_state})" if c.to_state else "")
            for c in self.changes
        )
        super().__init__(
            f"case {case_id} changed since you read version {expected} (it is at version {current})"
            + (f": {done}" if done else "")
            + "; reload it and decide again"
        )


@dataclass(frozen=True, slots=True)
class Report:
    """A case reported by a person (console, API, Open311 intake)."""

    community: str
    grid: str
    category: str
    description: str
    location: str = ""
    reporter_phone: str | None = None
    urgency: str = "normal"  # normal | urgent: an operator taking a call judges it (#23)
    channel: str | None = None  # how a person's report came in (hotline, console): on its first event


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
    urgency: str | None = None,
) -> Case:
    """A NEW case with its deadlines and owning town, not yet in any session."""
    # A critical alert starts urgent; a person can change that when verifying the case.
    urgency = urgency or ("urgent" if severity == "critical" else "normal")
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
    urgency: str | None = None,
    data: Mapping[str, Any] | None = None,
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
        urgency=urgency,
    )
    case.description, case.reporter_phone = description, reporter_phone
    session.add(case)
    record(session, case, action=action, note=note, actor=actor, now=now, data=data)
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
    check_attachments(session, case.id, action, actor, params)  # photos of this case, by this actor
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
        """Apply one action; returns the case's new version.

        ``expected_version`` is the version the caller read. When the case moved on since, the action
        still applies if only the system acted in between and it is allowed from the case's state now;
        a person's action in between is a VersionConflict naming it.
        """
        now = now or datetime.now(UTC)
        expected = expected_version
        for attempt in range(_ATTEMPTS):
            try:
                with Session(self._db) as session, session.begin():
                    case = session.get(Case, case_id, options=[selectinload(Case.events)])
                    if case is None:
                        raise CaseNotFound(f"case {case_id} not found")
                    # Without an expected version the caller's read is ours: a retry re-checks against it.
                    expected = case.version if expected is None else expected
                    self._check_version(case, expected)
                    # Re-checked, not trusted: apply_action refuses what the case's state now forbids.
                    self._apply(session, case, action, actor=actor, note=note, params=params, now=now)
                    return case.version
            except StaleDataError:
                # Someone committed between our read and our write: read again and decide again.
                if attempt == _ATTEMPTS - 1:
                    raise VersionConflict(case_id, expected or 0, self._version_of(case_id)) from None
            except IllegalTransition as err:
                raise self._explained(case_id, expected, err) from err
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _apply(
        self,
        session: Session,
        case: Case,
        action: str,
        *,
        actor: str,
        note: str,
        params: dict[str, Any] | None,
        now: datetime,
    ) -> None:
        if action == "merge":
            self._check_merge_target(session, case, (params or {}).get("into"))
        if action == "assign" and not (params or {}).get("assignee"):
            params = self._from_roster(case, params)
        check_named_people(self._policy.organisation, self._roster, case, action, params, self._grid_towns)
        event = act(session, self._policy, case, action, actor=actor, now=now, note=note, params=params)
        # The version this action makes (the mapper adds one at the flush): a later conflict names it.
        event.data = {**(event.data or {}), VERSION_KEY: case.version + 1}
        session.flush()

    @staticmethod
    def _check_version(case: Case, expected: int) -> None:
        """A person's action since ``expected`` (or a version that never was) is a real conflict."""
        if expected == case.version:
            return
        people = [e for e in case.events if _is_persons(e) and _made_version(e) > expected]
        if people or expected > case.version:
            changes = [Change(e.actor, e.action, e.at, e.to_state) for e in people]
            raise VersionConflict(case.id, expected, case.version, changes)

    def _version_of(self, case_id: int) -> int:
        with Session(self._db) as session:
            case = session.get(Case, case_id)
            return case.version if case is not None else 0

    def _explained(self, case_id: int, expected: int | None, err: IllegalTransition) -> IllegalTransition:
        """An action no longer allowed because the system moved a stale case: say what moved it."""
        if isinstance(err, VersionConflict) or expected is None:
            return err
        with Session(self._db) as session:
            case = session.get(Case, case_id, options=[selectinload(Case.events)])
            if case is None or case.version == expected:
                return err
            seen = [e.at for e in case.events if _is_persons(e) and 0 < _made_version(e) <= expected]
            since = max(seen, default=None)
            moves = [
                Change(e.actor, e.action, e.at, e.to_state)
                for e in case.events
                if e.from_state is not None
                and e.from_state != e.to_state
                and (since is None or e.at > since)
                and not _is_persons(e)
            ]
            return VersionConflict(case_id, expected, case.version, moves) if moves else err

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

    def report(
        self,
        report: Report,
        *,
        actor: str,
        now: datetime | None = None,
        along: Callable[[Session, int], None] | None = None,
    ) -> tuple[int, int | None]:
        """File a reported case; returns (its id, the case it merged into or None).

        ``along(session, case_id)`` keeps what came with the report (its photos, the status link) in
        the case's own transaction: a report is stored whole or not at all."""
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
                urgency=report.urgency,
                data={"channel": report.channel} if report.channel else None,
            )
            session.flush()
            if along is not None:
                along(session, case.id)
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


def _is_persons(event: CaseEvent) -> bool:
    return not event.actor.startswith(SYSTEM_PREFIX)


def _made_version(event: CaseEvent) -> int:
    """The case version a person's event made; 0 for events from before versions were kept."""
    value = (event.data or {}).get(VERSION_KEY)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
