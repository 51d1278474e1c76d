"""The console's return-visit list and form (#22).

``/console/visits``: closed cases awaiting a visit in the user's jurisdiction, oldest closed first,
nothing personal. ``/console/visits/{id}``: one case's visit form with the reporter's phone in full
(recorded as shown) for the visiting role, the calls so far, and the outcome to record; photos are
uploaded through the case's attachment endpoint by ``visits.js`` and sent as their ids.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.accounts import User
from api.console import bell
from api.console.web import ConsoleUser, check_csrf, page
from api.deps import Resources, ResourcesDep
from api.params import MAX_ROW_ID, Offset, RowId
from api.routes.visits import VisitIn, require_visitor, visit, visit_form
from api.scope import case_filter
from cases.visits import MAX_UNREACHABLE, NOTE_MAX, awaiting_visits
from cases.workflow import VISIT_OUTCOMES

router = APIRouter(include_in_schema=False)
router.include_router(bell.router)  # the bell's JSON and its "mark read" (every page's nav)
PAGE_SIZE = 50
# In the order the form offers them: reached (best to worst), then not reached.
OUTCOMES = ("satisfied", "basically_satisfied", "unsatisfied", "unreachable")
assert set(OUTCOMES) == VISIT_OUTCOMES  # a new outcome must get its place on the form
# An HTTP answer of the shared visit functions → the sentence the form shows.
STATUS_ERRORS = {
    status.HTTP_403_FORBIDDEN: "vis_forbidden",
    status.HTTP_404_NOT_FOUND: "vis_missing",
    status.HTTP_409_CONFLICT: "vis_not_awaiting",
}
DONE = ("final", "reopened", "retry")


def _forbidden(request: Request, resources: Resources, user: User, template: str) -> Response:
    response = page(request, resources, template, user=user, error="vis_forbidden")
    response.status_code = status.HTTP_403_FORBIDDEN
    return response


@router.get("/console/visits")
def visit_list(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    offset: Offset = 0,
    done: Annotated[str | None, Query(max_length=16)] = None,
    case: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    outcome: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """The list; after a visit, a line saying what was recorded (``done``, ``case``, ``outcome``)."""
    try:
        require_visitor(user)
    except HTTPException:
        return _forbidden(request, resources, user, "visits.html")
    offset = min(offset, MAX_ROW_ID)
    total, items = awaiting_visits(
        resources.db, case_filter(user, resources.policy), limit=PAGE_SIZE, offset=offset
    )
    return page(
        request,
        resources,
        "visits.html",
        user=user,
        error=None,
        items=items,
        total=total,
        next_offset=offset + PAGE_SIZE if offset + PAGE_SIZE < total else None,
        done=done if done in ("final", "reopened") and case is not None else None,
        done_case=case,
        done_outcome=outcome if outcome in OUTCOMES else None,
    )


def _form(
    request: Request,
    resources: Resources,
    user: User,
    case_id: int,
    *,
    error: str | None = None,
    done: str | None = None,
    values: dict[str, str] | None = None,
    status_code: int = status.HTTP_200_OK,
) -> Response:
    try:
        form = visit_form(resources, user, case_id, via="console")
    except HTTPException as err:
        response = page(
            request,
            resources,
            "visit.html",
            user=user,
            form=None,
            error=STATUS_ERRORS.get(err.status_code),
            done=done,
            case_id=case_id,
        )
        response.status_code = err.status_code if done is None else status.HTTP_200_OK
        return response
    response = page(
        request,
        resources,
        "visit.html",
        user=user,
        form=form,
        case_id=case_id,
        outcomes=OUTCOMES,
        error=error,
        done=done,
        values=values or {},
        note_max=NOTE_MAX,
        max_unreachable=MAX_UNREACHABLE,
    )
    response.status_code = status_code
    return response


@router.get("/console/visits/{case_id}")
def visit_page(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    case_id: RowId,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    return _form(request, resources, user, case_id, done=done if done in DONE else None)


@router.post("/console/visits/{case_id}")
def record(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    case_id: RowId,
    csrf: Annotated[str, Form(max_length=128)] = "",
    outcome: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=NOTE_MAX * 4)] = "",
    attachments: Annotated[list[int] | None, Form(max_length=10)] = None,
) -> Response:
    check_csrf(request, csrf)
    values = {"outcome": outcome, "note": note}
    try:
        body = VisitIn.model_validate({"outcome": outcome, "note": note, "attachments": attachments or []})
    except ValidationError as err:
        field = str(err.errors()[0]["loc"][0]) if err.errors() else "outcome"
        key = {"note": "vis_bad_note", "attachments": "vis_bad_outcome"}.get(field, "vis_bad_outcome")
        return _form(request, resources, user, case_id, error=key, values=values, status_code=422)
    try:
        done = visit(resources, user, case_id, body)
    except HTTPException as err:
        if err.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
            return _form(
                request, resources, user, case_id, error="vis_bad_outcome", values=values, status_code=422
            )
        return _form(
            request,
            resources,
            user,
            case_id,
            error=STATUS_ERRORS.get(err.status_code),
            status_code=err.status_code,
        )
    if not done.final:
        return RedirectResponse(
            f"/console/visits/{case_id}?done=retry", status_code=status.HTTP_303_SEE_OTHER
        )
    kind = "reopened" if done.state == "REOPENED" else "final"
    return RedirectResponse(
        f"/console/visits?done={kind}&case={case_id}&outcome={outcome}", status_code=status.HTTP_303_SEE_OTHER
    )
