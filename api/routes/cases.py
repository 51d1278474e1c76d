"""Grid cases: the queue (newest first) and one case with its timeline and evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.accounts import User
from api.deps import CurrentUser, ResourcesDep
from api.errors import problem
from api.params import Offset, RowId
from api.schemas import CaseDetail, CaseEventOut, CaseOut, EvidenceOut, Page, WaitingRequestOut
from api.scope import case_filter, require_action, sees_area
from cases import queue
from cases.actions import CaseFlow, CaseNotFound, Report, VersionConflict
from cases.assignees import grid_towns
from cases.models import Case, CaseState
from cases.queue import CaseFilters, SlaStatus
from cases.workflow import ACTIONS, REQUESTS, IllegalTransition, InvalidAction, check_params, pending_requests

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


def case_out(case: Case, resources: ResourcesDep) -> CaseOut:
    category = resources.categories.get(case.category)
    return CaseOut(
        id=case.id,
        community=case.community,
        grid=case.grid,
        category=case.category,
        category_name=category.name_zh if category else case.category,
        state=case.state,
        severity=case.severity,
        title=case.title,
        source=case.source,
        opened_at=case.opened_at,
        deadline=case.deadline,
        updated_at=case.updated_at,
        version=case.version,
        urgency=case.urgency,
        owner_town=case.owner_town,
        department=case.department,
        assignee=case.assignee,
        stage=case.stage,
        stage_due=case.stage_due,
        breaches=case.breaches,
        merged_into=case.merged_into,
        # reporter_phone is personal data: it is never part of a case listing or detail.
    )


@router.get("", response_model=Page[CaseOut])
def list_cases(
    resources: ResourcesDep,
    user: CurrentUser,
    state: Annotated[list[CaseState] | None, Query(description="Only cases in these states.")] = None,
    open_only: Annotated[
        bool, Query(alias="open", description="Only cases not yet closed, voided or merged.")
    ] = False,
    category: str | None = None,
    grid: str | None = None,
    assignee: str | None = None,
    sla: Annotated[
        SlaStatus | None,
        Query(description="overdue: deadline passed; due_soon: stage or deadline within 1 h"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Page[CaseOut]:
    filters = CaseFilters(
        states=state or (),
        open_only=open_only,
        category=category,
        grid=grid,
        assignee=assignee,
        sla=sla,
    )
    with Session(resources.db) as session:
        found = queue.list_cases(session, case_filter(user, resources.policy), filters, limit, offset)
        items = [case_out(c, resources) for c in found.cases]
        total = found.total
    return Page[CaseOut](items=items, total=total, limit=limit, offset=offset)


def load_detail(case_id: int, resources: ResourcesDep, user: User) -> CaseDetail:
    with Session(resources.db) as session:
        case = queue.case_with_history(session, case_filter(user, resources.policy), case_id)
        if case is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"case {case_id} not found")
        return CaseDetail(
            **case_out(case, resources).model_dump(),
            description=case.description,
            events=[CaseEventOut.model_validate(e, from_attributes=True) for e in case.events],
            evidence=[EvidenceOut.model_validate(e, from_attributes=True) for e in case.evidence],
            waiting_requests=waiting_requests(case),
        )


def waiting_requests(case: Case) -> list[WaitingRequestOut]:
    """The assignee's requests no approver has answered yet, oldest first."""
    waiting = sorted(pending_requests(case.events).items(), key=lambda item: item[1].at)
    return [
        WaitingRequestOut(
            action=kind,
            answer_with=[REQUESTS[kind], "refuse_request"],
            asked_by=event.actor,
            asked_at=event.at,
            params={k: v for k, v in (event.data or {}).items() if k in ("hours", "reason")},
        )
        for kind, event in waiting
    ]


@router.get("/{case_id}", response_model=CaseDetail, responses={404: {"description": "No such case"}})
def get_case(case_id: RowId, resources: ResourcesDep, user: CurrentUser) -> CaseDetail:
    return load_detail(case_id, resources, user)


class ReportIn(BaseModel):
    """A case reported by a person. The phone number is kept for the return visit and never listed."""

    model_config = ConfigDict(extra="forbid")

    community: str
    grid: str
    category: str
    description: str = Field(min_length=1, max_length=4000)
    location: str = Field(default="", max_length=256)
    reporter_phone: str | None = Field(default=None, pattern=r"^\+?[0-9 -]{5,20}$")


class ReportOut(BaseModel):
    id: int
    merged_into: int | None


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(
        description="accept, verify, assign, sign, feedback, check, pass, visit, call_up, ..."
    )
    expected_version: int | None = Field(
        default=None, description="The version the caller saw; a newer one means someone else acted: 409."
    )
    note: str = Field(default="", max_length=2000)
    params: dict[str, Any] = Field(default_factory=dict)


@router.post(
    "",
    response_model=ReportOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        403: problem("The grid is outside your jurisdiction"),
        422: problem("Unknown community, grid or category"),
    },
)
def report_case(body: ReportIn, resources: ResourcesDep, user: CurrentUser) -> ReportOut:
    community = resources.catalog.communities.get(body.community)
    if community is None or all(g.id != body.grid for g in community.grids):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown grid {body.community}/{body.grid}"
        )
    if not sees_area(user, resources.policy, body.community, body.grid):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "that grid is outside your jurisdiction")
    report = Report(
        body.community, body.grid, body.category, body.description, body.location, body.reporter_phone
    )
    try:
        case_id, merged_into = CaseFlow(resources.db, resources.policy).report(report, actor=user.username)
    except InvalidAction as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    return ReportOut(id=case_id, merged_into=merged_into)


class ChangeOut(BaseModel):
    actor: str
    action: str
    at: datetime
    to_state: str | None


class ConflictOut(BaseModel):
    """A 409: the action is not allowed now, or a person changed the case since ``expected_version``."""

    detail: str = Field(description="Why, in a sentence: who did what, when, and to reload.")
    expected_version: int | None = None
    version: int | None = Field(default=None, description="The case's version now.")
    changes: list[ChangeOut] = Field(
        default_factory=list, description="What happened since the caller's version that decides it."
    )


def conflict_answer(err: VersionConflict) -> JSONResponse:
    """A stale version explained: the changes people (or the system's state moves) made meanwhile."""
    body = ConflictOut(
        detail=str(err),
        expected_version=err.expected,
        version=err.current,
        changes=[
            ChangeOut(actor=c.actor, action=c.action, at=c.at, to_state=c.to_state) for c in err.changes
        ],
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status.HTTP_409_CONFLICT)


@router.post(
    "/{case_id}/actions",
    response_model=CaseDetail,
    responses={
        403: problem("Your role may not take this action"),
        404: problem("No such case"),
        409: {
            "model": ConflictOut,
            "description": "Illegal transition, or a person acted since your version",
        },
        422: problem("Unknown action, or a parameter missing, unknown to the action, or out of bounds"),
    },
)
def act_on_case(
    case_id: RowId, body: ActionIn, resources: ResourcesDep, user: CurrentUser
) -> CaseDetail | JSONResponse:
    load_detail(case_id, resources, user)  # 404 outside the jurisdiction, before anything else
    if body.action not in ACTIONS:  # an unknown action is a bad request for every role, not a 403
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"unknown action {body.action!r}; one of {', '.join(ACTIONS)}",
        )
    require_action(user, body.action)
    towns = grid_towns(resources.catalog, resources.policy.organisation)  # who may be named on the case
    flow = CaseFlow(resources.db, resources.policy, grid_towns=towns)
    try:
        check_params(body.action, body.params)  # a person's parameters: known keys, types and lengths
        flow.act(
            case_id,
            body.action,
            actor=user.username,
            expected_version=body.expected_version,
            note=body.note,
            params=body.params,
        )
    except CaseNotFound as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    except VersionConflict as err:
        return conflict_answer(err)
    except IllegalTransition as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    except InvalidAction as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    return load_detail(case_id, resources, user)
