"""Return visits (回访): closed cases awaiting a call to the resident, and what the call found.

A visit that reaches the resident ends with an outcome (satisfied, basically satisfied, unsatisfied →
the case reopens): the workflow's ``visit`` event, which the KPIs count. A call nobody answers is an
attempt only: the case stays awaiting its visit, and after ``MAX_UNREACHABLE`` of them the visit ends
as ``unreachable``. Every attempt is kept (``visit_attempts``) with its note and photos. Showing a
reporter's phone number is recorded (``reporter_phone_views``): who saw whose number, when.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.orm import Session

from cases.actions import CaseFlow, CaseNotFound
from cases.attachments import foreign_attachments
from cases.models import Case, CaseState
from cases.visit_models import ReporterPhoneView, VisitAttempt
from cases.workflow import ACTIONS, VISIT_OUTCOMES, IllegalTransition, InvalidAction

MAX_UNREACHABLE = 3  # calls nobody answered before the visit ends as unreachable
NOTE_MAX = 1000
MAX_ATTACHMENTS = 3
AWAITING = CaseState.CLOSED.value  # closed and not visited yet


@dataclass(frozen=True)
class AwaitingVisit:
    """A case in the visit list: nothing personal (the phone is on the visit form only)."""

    case_id: int
    community: str
    grid: str
    category: str
    title: str
    closed_at: datetime | None
    unreachable: int  # calls so far that reached nobody
    has_phone: bool


@dataclass(frozen=True)
class Attempt:
    at: datetime
    actor: str
    outcome: str
    note: str
    attachments: list[int]


@dataclass(frozen=True)
class VisitRecorded:
    final: bool  # the visit ended (the case left the list); False: an unanswered call, try again later
    state: str
    unreachable: int


def mask_phone(phone: str | None) -> str:
    """``13812345678`` → ``138****5678``: enough to tell numbers apart, not to call one."""
    # A mobile number is the last 11 digits (a +86 country code goes with the masked part).
    digits = "".join(c for c in phone or "" if c.isdigit())[-11:]
    if not digits:
        return ""
    if len(digits) < 8:
        return "*" * (len(digits) - 2) + digits[-2:]
    return f"{digits[:3]}****{digits[-4:]}"


def awaiting_visits(
    db: Engine, where: ColumnElement[bool], *, limit: int, offset: int = 0
) -> tuple[int, list[AwaitingVisit]]:
    """The closed cases ``where`` selects that await their visit, oldest closed first; and their total."""
    unreachable = (
        select(VisitAttempt.case_id, func.count().label("n"))
        .where(VisitAttempt.outcome == "unreachable")
        .group_by(VisitAttempt.case_id)
        .subquery()
    )
    selected = (Case.state == AWAITING, where)
    with Session(db) as session:
        total = session.scalar(select(func.count()).select_from(Case).where(*selected)) or 0
        rows = session.execute(
            select(Case, func.coalesce(unreachable.c.n, 0))
            .outerjoin(unreachable, unreachable.c.case_id == Case.id)
            .where(*selected)
            .order_by(Case.closed_at.asc(), Case.id.asc())
            .limit(limit)
            .offset(offset)
        ).all()
        items = [
            AwaitingVisit(
                c.id, c.community, c.grid, c.category, c.title, c.closed_at, int(n), bool(c.reporter_phone)
            )
            for c, n in rows
        ]
    return int(total), items


def attempts_of(db: Engine, case_id: int) -> list[Attempt]:
    """Every call made for the case's visit, oldest first."""
    with Session(db) as session:
        rows = session.scalars(
            select(VisitAttempt).where(VisitAttempt.case_id == case_id).order_by(VisitAttempt.id)
        ).all()
        return [Attempt(r.at, r.actor, r.outcome, r.note, list(r.attachments or [])) for r in rows]


def reporter_phone(
    db: Engine, case_id: int, *, viewer: str, via: str, now: datetime | None = None
) -> str | None:
    """The reporter's phone number in full, and a record that ``viewer`` was shown it. The caller has
    checked that the viewer may see it (``api.scope.sees_reporter_phone``)."""
    with Session(db) as session, session.begin():
        phone = session.scalar(select(Case.reporter_phone).where(Case.id == case_id))
        if phone:
            session.add(
                ReporterPhoneView(at=now or datetime.now(UTC), viewer=viewer, case_id=case_id, via=via)
            )
        return phone


@dataclass(frozen=True)
class PhoneView:
    at: datetime
    viewer: str
    case_id: int
    via: str


def phone_views(db: Engine, *, limit: int, case_id: int | None = None) -> list[PhoneView]:
    """Who was shown which case's reporter phone, newest first (for the audit)."""
    query = select(ReporterPhoneView).order_by(ReporterPhoneView.id.desc()).limit(limit)
    if case_id is not None:
        query = query.where(ReporterPhoneView.case_id == case_id)
    with Session(db) as session:
        return [PhoneView(r.at, r.viewer, r.case_id, r.via) for r in session.scalars(query)]


def check_visit(outcome: str, note: str, attachments: Sequence[int]) -> None:
    """InvalidAction naming what to fix in a visit's outcome, note or photos."""
    if outcome not in VISIT_OUTCOMES:
        raise InvalidAction(f"outcome must be one of {', '.join(sorted(VISIT_OUTCOMES))}, not {outcome!r}")
    if len(note) > NOTE_MAX:
        raise InvalidAction(f"note is longer than {NOTE_MAX} characters")
    if len(attachments) > MAX_ATTACHMENTS:
        raise InvalidAction(f"a visit carries at most {MAX_ATTACHMENTS} photos, not {len(attachments)}")


def record_visit(
    db: Engine,
    flow: CaseFlow,
    case_id: int,
    *,
    outcome: str,
    note: str,
    actor: str,
    attachments: Sequence[int] = (),
    now: datetime | None = None,
) -> VisitRecorded:
    """Record a call to the case's reporter. Raises InvalidAction (bad outcome, note or photos),
    IllegalTransition (the case does not await a visit) or CaseNotFound, and then stores nothing."""
    now = now or datetime.now(UTC)
    check_visit(outcome, note, attachments)
    with Session(db) as session, session.begin():
        case = session.get(Case, case_id, with_for_update=True)
        if case is None:
            raise CaseNotFound(f"case {case_id} not found")
        if case.state != AWAITING:
            raise IllegalTransition(
                f"case {case_id} is {case.state}: only a closed case awaits a return visit"
            )
        foreign = foreign_attachments(session, attachments, case_id=case_id, actor=actor)
        if foreign:
            raise InvalidAction(f"attachments {foreign} are not photos you uploaded to case {case_id}")
        earlier = session.scalar(
            select(func.count())
            .select_from(VisitAttempt)
            .where(VisitAttempt.case_id == case_id, VisitAttempt.outcome == "unreachable")
        )
        unreachable = int(earlier or 0) + (outcome == "unreachable")
        if outcome == "unreachable" and unreachable < MAX_UNREACHABLE:
            session.add(_attempt(case_id, now, actor, outcome, note, attachments))
            return VisitRecorded(final=False, state=case.state, unreachable=unreachable)
    params: dict[str, object] = {"outcome": outcome}
    if attachments and "attachments" in ACTIONS["visit"].params:
        params["attachments"] = list(attachments)  # the timeline event knows its photos
    flow.act(case_id, "visit", actor=actor, note=note, params=params, now=now)
    with Session(db) as session, session.begin():
        session.add(_attempt(case_id, now, actor, outcome, note, attachments))
        state = session.scalar(select(Case.state).where(Case.id == case_id)) or ""
    return VisitRecorded(final=True, state=state, unreachable=unreachable)


def _attempt(
    case_id: int, now: datetime, actor: str, outcome: str, note: str, attachments: Sequence[int]
) -> VisitAttempt:
    return VisitAttempt(
        case_id=case_id, at=now, actor=actor, outcome=outcome, note=note, attachments=list(attachments)
    )
