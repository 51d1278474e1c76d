"""The console's case page: timeline, evidence, and the actions this user may take right now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.accounts import User
from api.console.charts import Chart, line_chart, numeric
from api.console.web import ConsoleUser, check_csrf, page
from api.deps import ResourcesDep
from api.params import RowId
from api.routes.cases import load_detail
from api.schemas import CaseDetail
from api.scope import may_take
from cases.actions import CaseFlow, CaseNotFound
from cases.assignees import PERSON_PARAMS, candidates, grid_towns
from cases.models import CaseState
from cases.organisation import Person
from cases.rosters import current_roster
from cases.workflow import ACTIONS, IllegalTransition, InvalidAction, check_params
from contract.catalog import DeviceInfo
from series.store import StoreError

router = APIRouter(include_in_schema=False)
NUMERIC = {"hours": float, "rating": int, "into": int}


def allowed_actions(user: User, case: CaseDetail) -> list[tuple[str, tuple[str, ...]]]:
    """(action, the parameters its form asks for) for every action role and state allow."""
    state = CaseState(case.state)
    called = any(e.action == "call_up" for e in case.events)
    return [
        (name, action.needs)
        for name, action in ACTIONS.items()
        if state in action.sources and may_take(user, name) and (name != "rate_call" or called)
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
        chart=_evidence_chart(resources, case),
        actions=allowed_actions(user, case),
        departments=resources.policy.organisation.departments,
        pickers=named_people_pickers(resources, case),
    )
    if error:
        response.status_code = status.HTTP_409_CONFLICT
    return response


def named_people_pickers(resources: ResourcesDep, case: CaseDetail) -> dict[str, list[Person]]:
    """The people an assignee or visitor is chosen from (on duty first): the server accepts no other."""
    org = resources.policy.organisation
    towns = grid_towns(resources.catalog, org)
    people = candidates(org, current_roster(resources.db, org, case.grid), case, towns=towns)
    return dict.fromkeys(PERSON_PARAMS, people)


def _evidence_chart(resources: ResourcesDep, case: CaseDetail) -> Chart | None:
    """The first evidence's readings: the window the engine stored when it fired, which outlives the
    series' retention; for evidence without one, the store's from 30 min before to 30 min after."""
    evidence = next(iter(case.evidence), None)
    rule = next((r for r in resources.rules if evidence and r.id == evidence.rule_id), None)
    if evidence is None or rule is None or rule.field is None:
        return None
    field = rule.field
    info = resources.catalog.device_in(case.community, evidence.device)
    samples = numeric(evidence.readings or [])
    if len(samples) < 2:
        if info is None:
            return None
        samples = _stored_samples(resources, info, field, int(evidence.observed_at.timestamp() * 1000))
    value = rule.threshold.value if rule.threshold is not None else None
    threshold = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    spec = info.profile.fields.get(field) if info else None
    return line_chart(samples, field, (spec.unit or "") if spec else "", threshold)


def _stored_samples(
    resources: ResourcesDep, info: DeviceInfo, field: str, moment: int
) -> list[tuple[int, float]]:
    try:
        rows = resources.series.query(
            measurement=info.profile.measurement,
            community=info.community.id,
            device=info.device.id,
            since_ms=moment - 1_800_000,
            until_ms=moment + 1_800_000,
            limit=2000,
        )
    except StoreError:
        return []  # the chart is a help, not the case: the page still renders
    return numeric((r.ts_ms, r.fields.get(field)) for r in rows)


@router.get("/console/cases/{case_id}", response_class=HTMLResponse, response_model=None)
def case_page(case_id: RowId, request: Request, resources: ResourcesDep, user: ConsoleUser) -> Response:
    return _render(request, resources, user, case_id, None)


@router.post("/console/cases/{case_id}/actions", response_model=None)
async def act(
    case_id: RowId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    request.state.actor = user.username
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k not in ("csrf", "action", "note", "expected_version")}
    try:
        params: dict[str, Any] = {k: NUMERIC[k](v) if k in NUMERIC else v for k, v in values.items()}
        if action not in dict(allowed_actions(user, load_detail(case_id, resources, user))):
            raise InvalidAction(f"{action} is not available to a {user.role} now")
        check_params(action, params)
        towns = grid_towns(resources.catalog, resources.policy.organisation)
        CaseFlow(resources.db, resources.policy, grid_towns=towns).act(
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
