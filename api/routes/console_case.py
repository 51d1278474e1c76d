"""The console's case page: timeline, evidence, and the actions this user may take right now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerts.caseflow import CaseFlow, CaseNotFound
from alerts.models import CaseState
from alerts.workflow import ACTIONS, IllegalTransition, InvalidAction
from api.accounts import User
from api.deps import ResourcesDep
from api.routes.cases import load_detail
from api.schemas import CaseDetail
from api.scope import ROLE_ACTIONS
from api.web import check_csrf, page, session_user

router = APIRouter(include_in_schema=False)
NUMERIC = {"hours": float, "rating": int, "into": int}


def allowed_actions(user: User, case: CaseDetail) -> list[tuple[str, tuple[str, ...]]]:
    """(action, the parameters its form asks for) for every action role and state allow."""
    role = ROLE_ACTIONS.get(user.role, frozenset())
    state = CaseState(case.state)
    called = any(e.action == "call_up" for e in case.events)
    return [
        (name, action.needs)
        for name, action in ACTIONS.items()
        if state in action.sources and ("*" in role or name in role) and (name != "rate_call" or called)
    ]


def _render(
    request: Request, resources: ResourcesDep, user: User, case_id: int, error: str | None
) -> Response:
    try:
        case = load_detail(case_id, resources, user)
    except HTTPException:
        return RedirectResponse("/console", status_code=status.HTTP_303_SEE_OTHER)
    response = page(
        request,
        resources,
        "case.html",
        case=case,
        user=user,
        error=error,
        actions=allowed_actions(user, case),
        departments=resources.policy.organisation.departments,
    )
    if error:
        response.status_code = status.HTTP_409_CONFLICT
    return response


@router.get("/console/cases/{case_id}", response_class=HTMLResponse, response_model=None)
def case_page(case_id: int, request: Request, resources: ResourcesDep) -> Response:
    user = session_user(request, resources)
    if user is None:
        return RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER)
    return _render(request, resources, user, case_id, None)


@router.post("/console/cases/{case_id}/actions", response_model=None)
async def act(
    case_id: int,
    request: Request,
    resources: ResourcesDep,
    csrf: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
) -> Response:
    user = session_user(request, resources)
    if user is None:
        return RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER)
    check_csrf(request, csrf)
    request.state.actor = user.username
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k not in ("csrf", "action", "note", "expected_version")}
    try:
        params: dict[str, Any] = {k: NUMERIC[k](v) if k in NUMERIC else v for k, v in values.items()}
        if action not in dict(allowed_actions(user, load_detail(case_id, resources, user))):
            raise InvalidAction(f"{action} is not available to a {user.role} now")
        CaseFlow(resources.engine, resources.policy).act(
            case_id,
            action,
            actor=user.username,
            note=str(form.get("note", "")),
            params=params,
            expected_version=int(str(form.get("expected_version"))) if form.get("expected_version") else None,
        )
    except (ValueError, CaseNotFound, IllegalTransition, InvalidAction, HTTPException) as err:
        return _render(request, resources, user, case_id, str(getattr(err, "detail", err)))
    return RedirectResponse(f"/console/cases/{case_id}", status_code=status.HTTP_303_SEE_OTHER)
