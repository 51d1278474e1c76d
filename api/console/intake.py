"""Cases opened by hand: an operator taking a phone call or a 12345 transfer (#23).

The form goes through the same intake as residents' reports (``CaseFlow.report``), so a call about a
grid and category with an open case (a sensor's, say) merges into it, and the operator is told so.
The caller's phone is kept on the case for the return visit and, as every reporter's, never listed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts import User
from api.console.names import Names
from api.console.web import ConsoleUser, check_csrf, language, page
from api.deps import Resources, ResourcesDep
from api.scope import case_filter, may_take_calls, sees_area
from cases.actions import CaseFlow, Report
from cases.models import Case
from cases.workflow import InvalidAction

router = APIRouter(include_in_schema=False)
INTAKE_PATH = "/console/cases/new"
DESCRIPTION_MAX = 4000
LOCATION_MAX = 200
URGENCIES = ("normal", "urgent")
CHANNELS = ("hotline", "console")
PHONE = re.compile(r"[0-9+\- ]{3,32}")
# Form fields are capped twice as long as allowed: longer is refused outright (422), shorter but over
# the limit comes back in the form with the reason, nothing lost.
_CAP = 2 * DESCRIPTION_MAX


@dataclass(frozen=True, slots=True)
class CallForm:
    """What the operator typed, as typed: shown again when something needs correcting."""

    category: str = ""
    community: str = ""
    grid: str = ""
    building: str = ""
    location: str = ""
    description: str = ""
    urgency: str = "normal"
    phone: str = ""
    channel: str = "hotline"


@dataclass(frozen=True, slots=True)
class Place:
    """One option of the location pickers, with what it belongs to (for the script that narrows them)."""

    value: str
    label: str
    community: str
    grid: str = ""


def places(resources: Resources, user: User) -> tuple[list[Place], list[Place], list[Place]]:
    """The communities, grids and buildings of the user's jurisdiction, from the live catalog."""
    communities, grids, buildings = [], [], []
    for community in sorted(resources.catalog.communities.values(), key=lambda c: c.name):
        if not sees_area(user, resources.policy, community.id):
            continue
        communities.append(Place(community.id, community.name, community.id))
        for grid in community.grids:
            if not sees_area(user, resources.policy, community.id, grid.id):
                continue
            grids.append(Place(grid.id, grid.name, community.id, grid.id))
            buildings += [Place(b.id, b.name, community.id, grid.id) for b in grid.buildings]
    return communities, grids, buildings


def problems(form: CallForm, resources: Resources) -> list[str]:
    """Catalogue keys of what the form lacks or gets wrong (the place's jurisdiction is checked apart)."""
    found = []
    if form.category not in resources.categories:
        found.append("intake_err_category")
    community = resources.catalog.communities.get(form.community)
    grid = next((g for g in community.grids if g.id == form.grid), None) if community else None
    if grid is None:
        found.append("intake_err_grid")
    elif form.building and all(b.id != form.building for b in grid.buildings):
        found.append("intake_err_building")
    if not form.description.strip() or len(form.description) > DESCRIPTION_MAX:
        found.append("intake_err_description")
    if len(form.location) > LOCATION_MAX:
        found.append("intake_err_location")
    if form.phone and not PHONE.fullmatch(form.phone.strip()):
        found.append("intake_err_phone")
    if form.urgency not in URGENCIES or form.channel not in CHANNELS:
        found.append("intake_err_choice")
    return found


def report_of(form: CallForm, names: Names) -> Report:
    """The call as a report: where in words (building, then the exact place), the phone as given."""
    building = names.building(form.building, form.community) if form.building else ""
    where = " · ".join(p for p in (building, form.location.strip()) if p)
    return Report(
        community=form.community,
        grid=form.grid,
        category=form.category,
        description=form.description.strip(),
        location=where[:256],
        reporter_phone=form.phone.strip() or None,
        urgency=form.urgency,
        channel=form.channel,
    )


def _form_page(
    request: Request,
    resources: Resources,
    user: User,
    form: CallForm,
    *,
    errors: list[str] | None = None,
    merged: tuple[int, int] | None = None,
    status_code: int = status.HTTP_200_OK,
) -> Response:
    communities, grids, buildings = places(resources, user)
    names = Names(language(request), resources)
    categories = sorted(resources.categories, key=names.category)
    response = page(
        request,
        resources,
        "intake.html",
        user=user,
        form=asdict(form),
        categories=[(code, names.category(code)) for code in categories],
        communities=communities,
        grids=grids,
        buildings=buildings,
        urgencies=URGENCIES,
        channels=CHANNELS,
        errors=errors or [],
        merged=merged,
        description_max=DESCRIPTION_MAX,
        location_max=LOCATION_MAX,
    )
    response.status_code = status_code
    return response


def _forbidden(request: Request, resources: Resources, user: User) -> Response:
    response = page(request, resources, "intake.html", user=user, forbidden=True)
    response.status_code = status.HTTP_403_FORBIDDEN
    return response


def _visible_case(resources: Resources, user: User, case_id: int) -> bool:
    with Session(resources.db) as session:
        found = session.scalar(select(Case.id).where(Case.id == case_id, case_filter(user, resources.policy)))
    return found is not None


@router.get(INTAKE_PATH, response_class=HTMLResponse, response_model=None)
def intake_form(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    merged: int | None = None,
    recorded: int | None = None,
) -> Response:
    """The form; after a call merged into an open case, the same page says so and links the case."""
    if not may_take_calls(user):
        return _forbidden(request, resources, user)
    told = None
    if merged is not None and recorded is not None and _visible_case(resources, user, merged):
        told = (merged, recorded)
    return _form_page(request, resources, user, CallForm(), merged=told)


@router.post(INTAKE_PATH, response_model=None)
def take_call(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form(max_length=128)],
    category: Annotated[str, Form(max_length=64)] = "",
    community: Annotated[str, Form(max_length=64)] = "",
    grid: Annotated[str, Form(max_length=64)] = "",
    building: Annotated[str, Form(max_length=64)] = "",
    location: Annotated[str, Form(max_length=_CAP)] = "",
    description: Annotated[str, Form(max_length=_CAP)] = "",
    urgency: Annotated[str, Form(max_length=16)] = "normal",
    phone: Annotated[str, Form(max_length=64)] = "",
    channel: Annotated[str, Form(max_length=16)] = "hotline",
) -> Response:
    check_csrf(request, csrf)
    request.state.actor = user.username
    if not may_take_calls(user):
        return _forbidden(request, resources, user)
    form = CallForm(category, community, grid, building, location, description, urgency, phone, channel)
    errors = problems(form, resources)
    if "intake_err_grid" not in errors and not sees_area(user, resources.policy, community, grid):
        # Outside the jurisdiction a place does not exist for the user, as a case does not (404).
        return _form_page(
            request, resources, user, form, errors=["intake_err_grid"], status_code=status.HTTP_404_NOT_FOUND
        )
    if errors:
        return _form_page(
            request, resources, user, form, errors=errors, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
        )
    try:
        case_id, merged_into = CaseFlow(resources.db, resources.policy).report(
            report_of(form, Names(language(request), resources)), actor=user.username
        )
    except InvalidAction:  # the category went away between the check and the write
        return _form_page(
            request,
            resources,
            user,
            form,
            errors=["intake_err_category"],
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    if merged_into is None:
        return RedirectResponse(f"/console/cases/{case_id}", status_code=status.HTTP_303_SEE_OTHER)
    return RedirectResponse(
        f"{INTAKE_PATH}?merged={merged_into}&recorded={case_id}", status_code=status.HTTP_303_SEE_OTHER
    )
