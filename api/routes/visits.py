"""Return visits (回访): closed cases awaiting a visit, the reporter's phone for the visiting role
only, the outcome (#22).

The list carries nothing personal; one case's visit form carries the reporter's phone number in full
to a visiting role (``api.scope.sees_reporter_phone``), and each showing is recorded: who saw whose
number, when (``GET /api/v1/visits/phone-views``, for those who read the audit). Outside the
jurisdiction a case does not exist (404); a role that makes no visits is refused (403).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts import User
from api.deps import CurrentUser, Resources, ResourcesDep
from api.errors import problem
from api.params import MAX_ROW_ID, Offset, RowId
from api.scope import case_filter, may_read_audit, may_visit, sees_reporter_phone
from cases.actions import CaseFlow, CaseNotFound
from cases.models import Case
from cases.visits import (
    MAX_ATTACHMENTS,
    MAX_UNREACHABLE,
    NOTE_MAX,
    Attempt,
    PhoneView,
    attempts_of,
    awaiting_visits,
    phone_views,
    record_visit,
    reporter_phone,
)
from cases.workflow import IllegalTransition, InvalidAction

router = APIRouter(prefix="/api/v1", tags=["visits"])
Outcome = Literal["satisfied", "basically_satisfied", "unsatisfied", "unreachable"]


class AwaitingOut(BaseModel):
    case_id: int
    community: str
    grid: str
    category: str
    title: str
    closed_at: datetime | None
    unreachable_calls: int = Field(description="Calls so far that reached nobody")
    phone_left: bool = Field(description="Whether the reporter left a number (the number: on the visit form)")


class VisitListOut(BaseModel):
    total: int
    items: list[AwaitingOut]


class VisitFormOut(BaseModel):
    case_id: int
    state: str
    community: str
    grid: str
    category: str
    title: str
    description: str
    closed_at: datetime | None
    reporter_phone: str | None = Field(description="In full: shown to the visiting role, and recorded")
    attempts: list[Attempt]  # the domain record is the wire shape: one definition of an attempt
    max_unreachable: int = Field(description="Unanswered calls after which the visit ends as unreachable")


class VisitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    note: str = Field(default="", max_length=NOTE_MAX)
    attachments: list[Annotated[int, Field(ge=1, le=MAX_ROW_ID)]] = Field(
        default_factory=list, max_length=MAX_ATTACHMENTS, description="Photos of this case you uploaded"
    )


class VisitOut(BaseModel):
    final: bool = Field(description="The visit ended; false: nobody answered, the case awaits another call")
    state: str
    unreachable_calls: int


def require_visitor(user: User) -> None:
    if not may_visit(user):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a {user.role} makes no return visits: the town and district platform operators do",
        )


def case_in_scope(resources: Resources, user: User, case_id: int) -> Case:
    """The case, if the user's jurisdiction holds it (else 404: it does not exist for them)."""
    with Session(resources.db) as session:
        case = session.scalars(
            select(Case).where(Case.id == case_id, case_filter(user, resources.policy))
        ).first()
        if case is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"case {case_id} not found")
        session.expunge(case)
        return case


@dataclass(frozen=True)
class VisitForm:
    case: Case
    phone: str | None  # in full when the user may see it, else None
    attempts: list[Attempt]


def visit_form(resources: Resources, user: User, case_id: int, *, via: str) -> VisitForm:
    """A case's visit form for a visiting user: 403 for other roles, 404 outside the jurisdiction,
    409 when the case does not await a visit. Showing the phone is recorded."""
    require_visitor(user)
    case = case_in_scope(resources, user, case_id)
    if not sees_reporter_phone(user, resources.policy, case):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"case {case_id} is {case.state}: only a closed case awaits a return visit",
        )
    phone = reporter_phone(resources.db, case_id, viewer=user.username, via=via)
    return VisitForm(case, phone, attempts_of(resources.db, case_id))


def visit(resources: Resources, user: User, case_id: int, body: VisitIn) -> VisitOut:
    """Record a visit's outcome (or an unanswered call) as the user; HTTP errors name what to fix."""
    require_visitor(user)
    case_in_scope(resources, user, case_id)
    flow = CaseFlow(resources.db, resources.policy)
    try:
        done = record_visit(
            resources.db,
            flow,
            case_id,
            outcome=body.outcome,
            note=body.note,
            actor=user.username,
            attachments=body.attachments,
        )
    except CaseNotFound as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    except IllegalTransition as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    except InvalidAction as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    return VisitOut(final=done.final, state=done.state, unreachable_calls=done.unreachable)


@router.get("/visits", responses={403: problem("The role makes no return visits")})
def list_visits(
    resources: ResourcesDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> VisitListOut:
    """Closed cases awaiting their return visit in the caller's jurisdiction, the longest closed first.
    No phone number here: it is on one case's visit form only."""
    require_visitor(user)
    total, items = awaiting_visits(
        resources.db, case_filter(user, resources.policy), limit=limit, offset=offset
    )
    return VisitListOut(
        total=total,
        items=[
            AwaitingOut(
                case_id=v.case_id,
                community=v.community,
                grid=v.grid,
                category=v.category,
                title=v.title,
                closed_at=v.closed_at,
                unreachable_calls=v.unreachable,
                phone_left=v.has_phone,
            )
            for v in items
        ],
    )


@router.get("/visits/phone-views", responses={403: problem("Only admins and inspectors read this audit")})
def list_phone_views(
    resources: ResourcesDep,
    user: CurrentUser,
    case_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[PhoneView]:
    """Who was shown which case's reporter phone number, and when; newest first."""
    if not may_read_audit(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the audit is for admins and inspectors")
    return phone_views(resources.db, limit=limit, case_id=case_id)


@router.get(
    "/visits/{case_id}",
    responses={
        403: problem("The role makes no return visits"),
        404: problem("No such case in the caller's jurisdiction"),
        409: problem("The case does not await a return visit"),
    },
)
def get_visit(resources: ResourcesDep, user: CurrentUser, case_id: RowId) -> VisitFormOut:
    """One case's visit form, with the reporter's phone in full (the showing is recorded)."""
    form = visit_form(resources, user, case_id, via="api")
    case = form.case
    return VisitFormOut(
        case_id=case.id,
        state=case.state,
        community=case.community,
        grid=case.grid,
        category=case.category,
        title=case.title,
        description=case.description,
        closed_at=case.closed_at,
        reporter_phone=form.phone,
        attempts=form.attempts,
        max_unreachable=MAX_UNREACHABLE,
    )


@router.post(
    "/visits/{case_id}",
    responses={
        403: problem("The role makes no return visits"),
        404: problem("No such case in the caller's jurisdiction"),
        409: problem("The case does not await a return visit"),
        422: problem("A bad outcome, note or photo list"),
    },
)
def post_visit(resources: ResourcesDep, user: CurrentUser, case_id: RowId, body: VisitIn) -> VisitOut:
    """Record the visit: satisfied, basically satisfied, unsatisfied (the case reopens) or unreachable
    (an unanswered call: the case stays awaiting until the third one)."""
    return visit(resources, user, case_id, body)
