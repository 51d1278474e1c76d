"""The console's supervision page: orders, answers and the monthly 通报 (#24); and the form on the case
page that issues a manual order (``supervision_form``, a template global ``case.html`` calls).

The page reads and writes through the same functions as ``/api/v1/supervision``: the same jurisdiction,
the same rules on who issues and who answers, the same timeline notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.accounts import User
from api.console.web import ConsoleUser, check_csrf, page, templates
from api.deps import Resources, ResourcesDep, get_resources
from api.params import MAX_ROW_ID, RowId
from api.reports.monthly import unit_names
from api.routes.cases import load_detail
from api.routes.supervision import (
    NoticesOut,
    answer_as,
    issue_manual_order,
    order_filters,
    supervision_notices,
)
from api.schemas import CaseDetail
from api.scope import answers_for, case_filter, may_see_supervision, may_supervise, may_supervise_unit
from cases.supervision_orders import (
    ANSWER_MAX,
    ORDER_STATES,
    REASON_MAX,
    ManualOrder,
    OrderFilters,
    OrderKind,
    case_units,
    holding_unit,
    list_orders,
    unit_kind,
)

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
MONTH = re.compile(r"^[0-9]{4}-[0-9]{2}$")
KINDS: tuple[OrderKind, ...] = ("auto", "manual")
# Refusals shown as words of the catalogue, never the exception's text: (status, field) -> key.
FIELD_ERRORS = {
    "reason": "sup_err_reason",
    "deadline": "sup_err_deadline",
    "target_unit": "sup_err_target_unit",
    "answer": "sup_err_answer",
}
STATUS_ERRORS = {403: "sup_err_forbidden", 404: "sup_err_not_found", 409: "sup_err_answered"}
DEFAULT_ANSWER_DAYS = 2  # the issue form's suggested deadline


@dataclass(frozen=True, slots=True)
class IssueForm:
    """What the case page's supervision form offers this user on this case."""

    targets: list[tuple[str, str]]  # (unit id, its name), the holding unit first
    holding: str  # the unit holding the case: the default, when the user may supervise it
    deadline: str  # the suggested deadline, as a datetime-local value
    earliest: str


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def supervision_form(request: Request, user: User, case: CaseDetail) -> IssueForm | None:
    """The issue form for the case page, or None when the user may not supervise this case."""
    resources = get_resources(request)
    if not may_supervise(user, resources.policy, case.community):
        return None
    names = unit_names(resources)
    units = case_units(case)
    holding = holding_unit(case)
    ordered = [holding, *(u for u in units if u != holding)]
    targets = [(u, names.get(u, u)) for u in ordered if u in units and may_supervise_unit(user, units[u])]
    if not targets:
        return None
    tz = ZoneInfo(resources.settings.display_timezone)
    now = datetime.now(UTC)
    suggested = _local(now + timedelta(days=DEFAULT_ANSWER_DAYS), tz)
    return IssueForm(targets, holding, suggested, _local(now, tz))


templates.env.globals.update(supervision_form=supervision_form, may_see_supervision=may_see_supervision)


def _error_key(err: HTTPException) -> str:
    if isinstance(err.detail, list) and err.detail:
        field = str(err.detail[0].get("loc", ["", ""])[-1])
        return FIELD_ERRORS.get(field, "sup_err_forbidden")
    return STATUS_ERRORS.get(err.status_code, "sup_err_forbidden")


def _this_month(resources: Resources) -> str:
    return datetime.now(ZoneInfo(resources.settings.display_timezone)).strftime("%Y-%m")


def _query_filters(resources: Resources, query: dict[str, str]) -> tuple[OrderFilters, bool]:
    """The page's filters from its query; a malformed month is shown as an error, not a 500."""
    state = next((s for s in ORDER_STATES if s == query.get("state")), None)
    kind = next((k for k in KINDS if k == query.get("kind")), None)
    month = query.get("month", "")
    bad_month = bool(month) and not MONTH.match(month)
    try:
        filters = order_filters(
            resources,
            state=state,
            unit=query.get("unit", "")[:64] or None,
            town=query.get("town", "")[:64] or None,
            case_id=None,
            kind=kind,
            month=_this_month(resources) if bad_month or not month else month,
            from_=None,
            to=None,
        )
    except HTTPException:  # a month the calendar refuses (2026-13)
        return _query_filters(resources, {**query, "month": ""})[0], True
    return filters, bad_month


def _render(
    request: Request,
    resources: Resources,
    user: User,
    query: dict[str, str],
    *,
    error: str | None = None,
    answer_to: int | None = None,
    answer_text: str = "",
    status_code: int = status.HTTP_200_OK,
) -> Response:
    if not may_see_supervision(user):
        response = page(request, resources, "supervision.html", user=user, forbidden=True)
        response.status_code = status.HTTP_403_FORBIDDEN
        return response
    filters, bad_month = _query_filters(resources, query)
    tz = ZoneInfo(resources.settings.display_timezone)
    assert filters.issued_from is not None
    month = filters.issued_from.astimezone(tz).strftime("%Y-%m")
    offset = min(int(query["offset"]), MAX_ROW_ID) if query.get("offset", "").isdigit() else 0
    try:
        notices: NoticesOut | None = supervision_notices(resources, user, month)
    except HTTPException:  # a role without a scope of its own (403): the page shows orders only
        notices = None
    found = list_orders(
        resources.db,
        case_filter(user, resources.policy),
        filters,
        now=datetime.now(UTC),
        limit=PAGE_SIZE,
        offset=offset,
    )
    form = {
        "state": filters.state or "",
        "kind": filters.kind or "",
        "unit": filters.unit or "",
        "town": filters.town or "",
        "month": month,
    }
    kept = {k: v for k, v in form.items() if v}
    following = offset + PAGE_SIZE < found.total
    response = page(
        request,
        resources,
        "supervision.html",
        user=user,
        forbidden=False,
        orders=found.orders,
        counts=found.counts,
        total=found.total,
        form=form,
        states=ORDER_STATES,
        kinds=KINDS,
        towns=[(t.id, t.name) for t in resources.policy.organisation.towns],
        units=sorted({o.unit for o in found.orders} | ({filters.unit} if filters.unit else set())),
        names=unit_names(resources),
        notices=notices,
        bad_month=bad_month,
        may_answer={
            o.id: o.answered_at is None and answers_for(user, o.unit, unit_kind(o.unit, o))
            for o in found.orders
        },
        error=error,
        answer_to=answer_to,
        answer_text=answer_text,
        answer_max=ANSWER_MAX,
        done=next((d for d in ("issued", "answered") if d == query.get("done")), None),
        next_query=urlencode(kept | {"offset": offset + PAGE_SIZE}) if following else None,
        prev_query=urlencode(kept | {"offset": max(0, offset - PAGE_SIZE)}) if offset else None,
    )
    response.status_code = status_code
    return response


@router.get("/console/supervision", response_class=HTMLResponse, response_model=None)
def supervision_page(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    state: Annotated[str, Query(max_length=16)] = "",
    kind: Annotated[str, Query(max_length=8)] = "",
    unit: Annotated[str, Query(max_length=64)] = "",
    town: Annotated[str, Query(max_length=64)] = "",
    month: Annotated[str, Query(max_length=7)] = "",
    offset: Annotated[str, Query(max_length=10)] = "",
    done: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    query = {"state": state, "kind": kind, "unit": unit, "town": town, "month": month, "offset": offset}
    return _render(request, resources, user, query | {"done": done})


@router.post("/console/supervision/{order_id}/answer", response_model=None)
def answer(
    order_id: RowId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form(max_length=64)] = "",
    answer: Annotated[str, Form(max_length=ANSWER_MAX + 100)] = "",
    back: Annotated[str, Form(max_length=512)] = "",
) -> Response:
    check_csrf(request, csrf)
    request.state.actor = user.username
    query = _back_query(back)
    try:
        answer_as(resources, user, order_id, answer)
    except HTTPException as err:
        code = status.HTTP_422_UNPROCESSABLE_CONTENT if err.status_code == 422 else err.status_code
        return _render(
            request,
            resources,
            user,
            query,
            error=_error_key(err),
            answer_to=order_id,
            answer_text=answer,
            status_code=code,
        )
    return RedirectResponse(
        "/console/supervision?" + urlencode(query | {"done": "answered"}), status.HTTP_303_SEE_OTHER
    )


def _back_query(back: str) -> dict[str, str]:
    """The page's filters to return to, from the form (only the filters the page knows)."""
    known = ("state", "kind", "unit", "town", "month", "offset")
    return {k: v[:64] for k, v in parse_qsl(back) if k in known}


@router.post("/console/cases/{case_id}/supervision", response_model=None)
def issue(
    case_id: RowId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=REASON_MAX + 100)] = "",
    deadline: Annotated[str, Form(max_length=32)] = "",
    target_unit: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    check_csrf(request, csrf)
    request.state.actor = user.username
    tz = ZoneInfo(resources.settings.display_timezone)
    try:
        due = _local_time(deadline, tz)
        issue_manual_order(resources, user, case_id, ManualOrder(reason, due, target_unit or None))
    except HTTPException as err:
        return _issue_error(request, resources, user, case_id, err, reason, deadline, target_unit)
    return RedirectResponse(f"/console/cases/{case_id}?supervised=1#timeline", status.HTTP_303_SEE_OTHER)


def _local_time(text: str, tz: ZoneInfo) -> datetime:
    """A datetime-local value in the deployment's zone; a 422 naming the deadline when it is none."""
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T"))
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)
    except ValueError:
        detail = [{"loc": ["body", "deadline"], "msg": "not a time", "type": "value_error"}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None


def _issue_error(
    request: Request,
    resources: Resources,
    user: User,
    case_id: int,
    err: HTTPException,
    reason: str,
    deadline: str,
    target_unit: str,
) -> Response:
    """The issue form again, with what was typed and what to fix (nothing typed is lost)."""
    try:
        case = load_detail(case_id, resources, user)
    except HTTPException:
        return RedirectResponse("/console", status_code=status.HTTP_303_SEE_OTHER)
    response = page(
        request,
        resources,
        "supervision.html",
        user=user,
        forbidden=False,
        issue_case=case,
        issue_form=supervision_form(request, user, case),
        issue_values={"reason": reason, "deadline": deadline, "target_unit": target_unit},
        error=_error_key(err),
    )
    response.status_code = (
        status.HTTP_422_UNPROCESSABLE_CONTENT if err.status_code == 422 else err.status_code
    )
    return response
