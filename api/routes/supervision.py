"""Supervision orders (督办), automatic and manual, and the monthly 通报 list (#24).

Orders are read on the cases the caller sees (``api.scope.case_filter``): outside the jurisdiction an
order or a case does not exist (404). District staff and town operators issue manual orders on a case;
the unit an order targets answers it. Every write is audited by the app's middleware and noted in the
case's timeline by ``cases.actions``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts import User
from api.deps import CurrentUser, Resources, ResourcesDep
from api.errors import problem
from api.params import MAX_ROW_ID, Offset, RowId, in_utc_range
from api.reports.monthly import unit_names
from api.routes.kpis import display_zone
from api.routes.reports import scope_level
from api.scope import (
    answers_for,
    case_filter,
    kpi_scopes,
    may_read_report,
    may_see_supervision,
    may_supervise,
    may_supervise_unit,
    own_department,
)
from cases.kpi_notices import NoticedCase, monthly_notices
from cases.kpi_periods import PeriodError, month_period
from cases.kpis import Level, scope_communities
from cases.models import Case
from cases.supervision_orders import (
    ANSWER_MAX,
    REASON_MAX,
    AlreadyAnswered,
    ManualOrder,
    NotYours,
    OrderFilters,
    OrderKind,
    OrderNotFound,
    OrderState,
    OrderView,
    SupervisionError,
    answer_order,
    issue_order,
    list_orders,
    order_view,
)

router = APIRouter(prefix="/api/v1", tags=["supervision"])
MONTH = r"^[0-9]{4}-[0-9]{2}$"


class OrderOut(BaseModel):
    id: int
    case_id: int
    case_title: str
    community: str
    grid: str
    category: str
    owner_town: str
    kind: OrderKind = Field(description="auto: issued at an SLA breach; manual: issued by a person")
    issued_at: datetime
    issued_by: str
    reason: str | None
    stage: str
    level: int
    unit: str = Field(description="The unit the order targets (and a breach counts against)")
    unit_name: str
    addressed_to: str
    due_at: datetime = Field(description="When the answer is due; unanswered after it, the order is overdue")
    state: OrderState
    answer: str | None
    answered_by: str | None
    answered_at: datetime | None
    answered_late: bool


class StateCounts(BaseModel):
    open: int
    answered: int
    overdue: int


class OrderPageOut(BaseModel):
    items: list[OrderOut]
    total: int
    limit: int
    offset: int
    counts: StateCounts = Field(description="Orders per state among those the filters select, state aside")


class ManualOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=REASON_MAX, description="Why the case is supervised")
    deadline: datetime = Field(description="When the answer is due: in the future, with a UTC offset")
    target_unit: str | None = Field(
        default=None,
        max_length=64,
        description="The case's grid, town or department; by default the unit holding the case",
    )


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, max_length=ANSWER_MAX, description="What the unit did")


class NoticedCaseOut(BaseModel):
    case_id: int
    community: str
    grid: str
    category: str
    at: datetime


class UnitNoticeOut(BaseModel):
    unit: str
    unit_name: str
    overdue: list[NoticedCaseOut]
    returned: list[NoticedCaseOut]
    orders: int = Field(description="Automatic supervision orders issued against the unit")
    escalated: int = Field(description="Of which escalated to the unit's leader")


class NoticesOut(BaseModel):
    month: str
    level: Level | None = Field(description="The scope's level; none for a department's own notice")
    scope: str
    units: list[UnitNoticeOut]


def order_out(view: OrderView, names: dict[str, str]) -> OrderOut:
    return OrderOut(
        **{k: getattr(view, k) for k in OrderOut.model_fields if k not in ("unit_name", "answered_late")},
        unit_name=names.get(view.unit, view.unit),
        answered_late=view.answered_late,
    )


def _require_reader(user: User) -> None:
    if not may_see_supervision(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"a {user.role} does not read supervision orders")


def _aware(*moments: datetime | None) -> None:
    if any(m is not None and m.tzinfo is None for m in moments) or not in_utc_range(*moments):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "from and to need a UTC offset")


def _month_span(resources: Resources, month: str) -> tuple[datetime, datetime]:
    try:
        period = month_period(month, display_zone(resources))
    except PeriodError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    if period.start.year < 1971:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a month from 1971 on")
    return period.start, period.end


def order_filters(
    resources: Resources,
    *,
    state: OrderState | None,
    unit: str | None,
    town: str | None,
    case_id: int | None,
    kind: OrderKind | None,
    month: str | None,
    from_: datetime | None,
    to: datetime | None,
) -> OrderFilters:
    """The listing's filters; ``month`` (local calendar) or ``from``/``to`` bound the issue time."""
    _aware(from_, to)
    if month is not None:
        if from_ is not None or to is not None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "give month, or from and to, not both")
        from_, to = _month_span(resources, month)
    return OrderFilters(state, unit, town, case_id, kind, from_, to)


ERRORS: dict[int | str, dict[str, Any]] = {
    403: problem("Your role does not read supervision orders"),
    422: problem("Bad parameters"),
}


@router.get("/supervision", response_model=OrderPageOut, responses=ERRORS)
def list_supervision(
    resources: ResourcesDep,
    user: CurrentUser,
    state: Annotated[OrderState | None, Query(description="open, answered or overdue, as of now")] = None,
    unit: Annotated[str | None, Query(max_length=64, description="Orders targeting this unit")] = None,
    town: Annotated[str | None, Query(max_length=64, description="Orders on this town's cases")] = None,
    case: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID, description="Orders on this case")] = None,
    kind: OrderKind | None = None,
    month: Annotated[str | None, Query(pattern=MONTH, description="Issued in this month (local)")] = None,
    from_: Annotated[datetime | None, Query(alias="from", description="Issued from (with offset)")] = None,
    to: Annotated[datetime | None, Query(description="Issued before (with offset)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> OrderPageOut:
    """Every supervision order on the cases you may see, newest first, with its state and answer."""
    _require_reader(user)
    filters = order_filters(
        resources, state=state, unit=unit, town=town, case_id=case, kind=kind, month=month, from_=from_, to=to
    )
    found = list_orders(
        resources.db,
        case_filter(user, resources.policy),
        filters,
        now=datetime.now(UTC),
        limit=limit,
        offset=offset,
    )
    names = unit_names(resources)
    return OrderPageOut(
        items=[order_out(o, names) for o in found.orders],
        total=found.total,
        limit=limit,
        offset=offset,
        counts=StateCounts(**found.counts),
    )


def _notice_scope(
    resources: Resources, user: User, scope: str | None, level: Level | None
) -> tuple[Level | None, str]:
    """(level, scope) of the notice: the one asked for, else the widest the user sees."""
    department = own_department(user)
    if scope is None and level is None and department is not None:
        return None, department
    if scope is None:
        widest = kpi_scopes(user, resources.policy)
        if not widest:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"a {user.role} reads no 通报")
        level, scope = widest[0][0], widest[0][1]
    found = scope_level(resources, scope, level)
    if not may_read_report(user, resources.policy, resources.catalog, found, scope):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the {found} {scope!r} is outside your jurisdiction")
    return found, scope


def _noticed(cases: tuple[NoticedCase, ...]) -> list[NoticedCaseOut]:
    return [
        NoticedCaseOut(case_id=c.case_id, community=c.community, grid=c.grid, category=c.category, at=c.at)
        for c in cases
    ]


@router.get(
    "/supervision/notices",
    response_model=NoticesOut,
    responses={
        403: problem("The scope is outside your jurisdiction"),
        404: problem("No such district, town, community or grid"),
        422: problem("Bad parameters: month is YYYY-MM"),
    },
)
def supervision_notices(
    resources: ResourcesDep,
    user: CurrentUser,
    month: Annotated[str, Query(pattern=MONTH, description="The month, YYYY-MM (local time)")],
    scope: Annotated[
        str | None, Query(max_length=64, description="A district, town, community or grid")
    ] = None,
    level: Annotated[Level | None, Query(description="The scope's level, when its id is ambiguous")] = None,
) -> NoticesOut:
    """The month's 通报: each unit's overdue (supervised at a breach) and returned cases, from the log —
    the list the monthly report carries. A department handler without a scope gets their department's."""
    start, end = _month_span(resources, month)
    found, scope = _notice_scope(resources, user, scope, level)
    if found is None:  # a department's own notice: every case noticed against it
        notices = [n for n in monthly_notices(resources.db, start=start, end=end) if n.unit == scope]
    else:
        communities = scope_communities(resources.policy, found, scope)
        grid = scope if found == "grid" else None
        notices = monthly_notices(resources.db, start=start, end=end, communities=communities, grid=grid)
    names = unit_names(resources)
    return NoticesOut(
        month=month,
        level=found,
        scope=scope,
        units=[
            UnitNoticeOut(
                unit=n.unit,
                unit_name=names.get(n.unit, n.unit),
                overdue=_noticed(n.overdue),
                returned=_noticed(n.returned),
                orders=n.orders,
                escalated=n.escalated,
            )
            for n in notices
        ],
    )


def _refuse(err: SupervisionError) -> HTTPException:
    if isinstance(err, OrderNotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(err))
    if isinstance(err, NotYours):
        return HTTPException(status.HTTP_403_FORBIDDEN, str(err))
    if isinstance(err, AlreadyAnswered):
        return HTTPException(status.HTTP_409_CONFLICT, str(err))
    # The same shape as FastAPI's own validation errors: the field to fix is named.
    detail = [{"loc": ["body", err.field or "body"], "msg": str(err), "type": "value_error"}]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def issue_manual_order(resources: Resources, user: User, case_id: int, order: ManualOrder) -> int:
    """Issue ``order`` on a case the user sees, or raise the HTTP refusal (shared with the console)."""
    visible = case_filter(user, resources.policy)
    community = _community_of(resources, case_id, user)
    if not may_supervise(user, resources.policy, community):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"a {user.role} may not issue supervision orders here")
    if order.due_at.tzinfo is None or not in_utc_range(order.due_at):
        raise _refuse(SupervisionError("deadline needs a UTC offset, inside the calendar", "deadline"))
    try:
        return issue_order(
            resources.db,
            visible,
            case_id,
            order,
            may_target=lambda kind: may_supervise_unit(user, kind),
            actor=user.username,
            now=datetime.now(UTC),
        )
    except SupervisionError as err:
        raise _refuse(err) from err


def _community_of(resources: Resources, case_id: int, user: User) -> str:
    """The case's community when the user sees the case; 404 otherwise, before anything else."""
    with Session(resources.db) as session:
        community = session.scalar(
            select(Case.community).where(Case.id == case_id, case_filter(user, resources.policy))
        )
    if community is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"case {case_id} not found")
    return community


@router.post(
    "/cases/{case_id}/supervision",
    response_model=OrderOut,
    status_code=status.HTTP_201_CREATED,
    tags=["cases"],
    responses={
        403: problem("Your role may not supervise this case or this unit"),
        404: problem("No such case"),
        422: problem("A field to fix: reason, deadline or target_unit"),
    },
)
def supervise_case(
    case_id: RowId, body: ManualOrderIn, resources: ResourcesDep, user: CurrentUser
) -> OrderOut:
    """Issue a manual supervision order on a case: a reason, a deadline in the future, a target unit."""
    order_id = issue_manual_order(
        resources, user, case_id, ManualOrder(body.reason, body.deadline, body.target_unit)
    )
    return _one(resources, user, order_id)


def _one(resources: Resources, user: User, order_id: int) -> OrderOut:
    view = order_view(resources.db, case_filter(user, resources.policy), order_id, datetime.now(UTC))
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"supervision order {order_id} not found")
    return order_out(view, unit_names(resources))


def answer_as(resources: Resources, user: User, order_id: int, answer: str) -> OrderView:
    """The user's answer to an order, or the HTTP refusal (shared with the console)."""
    try:
        return answer_order(
            resources.db,
            case_filter(user, resources.policy),
            order_id,
            answer,
            may_answer=lambda unit, kind: answers_for(user, unit, kind),
            actor=user.username,
            now=datetime.now(UTC),
        )
    except SupervisionError as err:
        raise _refuse(err) from err


@router.post(
    "/supervision/{order_id}/answer",
    response_model=OrderOut,
    responses={
        403: problem("You do not answer for the unit the order targets"),
        404: problem("No such order"),
        409: problem("The order is answered already"),
        422: problem("The answer is missing or too long"),
    },
)
def answer_supervision_order(
    order_id: RowId, body: AnswerIn, resources: ResourcesDep, user: CurrentUser
) -> OrderOut:
    """The target unit's answer: kept on the order, with who answered and when, and noted on the case."""
    return order_out(answer_as(resources, user, order_id, body.answer), unit_names(resources))
