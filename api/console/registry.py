"""The console's registry pages: the district's tree, a community's grids and devices, and the forms
that add and change them.

Reads are scoped like the API (a town operator sees its town, a grid worker its grid); every form
posts here with the session's CSRF token, passes the API's jurisdiction check (``may_manage_registry``)
and goes through ``registry.editing``, the one path for registry changes. A refusal comes back on the
form, next to the field it names, in the reader's language.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Form, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts import User
from api.console.i18n import TEXT
from api.console.web import ConsoleUser, check_csrf, language, page
from api.deps import Resources, ResourcesDep
from api.scope import may_manage_registry, sees_area, sees_town
from contract.catalog import DeviceState
from contract.ids import ID_PATTERN
from registry import editing
from registry.editing import RegistryError
from registry.models import (
    RegistryBuilding,
    RegistryCommunity,
    RegistryDevice,
    RegistryGateway,
    RegistryGrid,
    RegistryTown,
)

router = APIRouter(include_in_schema=False)
PathId = Annotated[str, Path(pattern=ID_PATTERN)]
Text = Annotated[str, Form(max_length=256)]
T = TypeVar("T")
STATES = [s.value for s in DeviceState]
# The catalogue's word for each field a refusal may name; anything else is the form as a whole.
FIELD_WORDS = {
    "id": "reg_f_id",
    "name": "reg_f_name",
    "type": "reg_f_type",
    "gateway": "reg_f_gateway",
    "grid": "reg_f_grid",
    "building": "reg_f_building",
    "buildings": "reg_f_building",
    "location": "reg_f_location",
    "lat": "reg_f_lat",
    "lon": "reg_f_lon",
    "datum": "reg_f_datum",
    "installed": "reg_f_installed",
    "state": "reg_f_state",
    "community": "reg_f_community",
    "device": "reg_f_device",
    "polygon": "reg_f_polygon",
}


@dataclass(slots=True)
class Refusal:
    """What went wrong with a form, by field (``form`` when no one field is to blame)."""

    errors: dict[str, str] = field(default_factory=dict)

    def add(self, lang: str, err: RegistryError, shown: Collection[str]) -> None:
        """The refusal next to its field when the form ``shown`` has it, else at the form's foot."""
        words = TEXT[lang]
        name = err.field.split(".")[0]
        label = words[FIELD_WORDS[name]] if name in FIELD_WORDS else words["reg_f_form"]
        self.errors[name if name in shown else "form"] = words["reg_refused"].format(
            field=label, message=err.message
        )


PLACE_FIELDS = ("id", "name", "grid")
DEVICE_FIELDS = ("id", "type", "gateway", "grid", "building", "location", "lat", "lon", "installed", "state")


@dataclass(slots=True)
class CommunityView:
    row: RegistryCommunity
    town: RegistryTown | None
    grids: list[RegistryGrid]
    buildings: dict[str, list[RegistryBuilding]]
    gateways: list[RegistryGateway]
    devices: list[RegistryDevice]


def _apply(resources: Resources, change: Callable[[Session], T]) -> T:
    """One registry change in its own transaction, as the API makes it; raises RegistryError."""
    with Session(resources.db, expire_on_commit=False) as session, session.begin():
        result = change(session)
    resources.live.refresh()  # this page shows the change at once; the other services within a poll
    return result


def _community_view(resources: Resources, user: User, community: str) -> CommunityView | None:
    with Session(resources.db) as session:
        row = session.get(RegistryCommunity, community)
        if row is None or not sees_area(user, resources.policy, community):
            return None
        town = session.get(RegistryTown, row.town_id)
        grids = [
            g
            for g in session.scalars(
                select(RegistryGrid).where(RegistryGrid.community_id == community).order_by(RegistryGrid.id)
            )
            if sees_area(user, resources.policy, community, g.id)
        ]
        buildings: dict[str, list[RegistryBuilding]] = {}
        for b in session.scalars(
            select(RegistryBuilding)
            .where(RegistryBuilding.community_id == community)
            .order_by(RegistryBuilding.id)
        ):
            buildings.setdefault(b.grid_id, []).append(b)
        gateways = list(
            session.scalars(
                select(RegistryGateway)
                .where(RegistryGateway.community_id == community)
                .order_by(RegistryGateway.id)
            )
        )
        devices = [
            d
            for d in session.scalars(
                select(RegistryDevice)
                .where(RegistryDevice.community_id == community)
                .order_by(RegistryDevice.grid_id, RegistryDevice.id)
            )
            if sees_area(user, resources.policy, community, d.grid_id)
        ]
    return CommunityView(row, town, grids, buildings, gateways, devices)


def _profiles(resources: Resources, lang: str) -> list[tuple[str, str]]:
    """(id, name in the reader's language) of every sensor type, by name."""
    names = [
        (p.id, (p.name_zh or p.name) if lang == "zh" else p.name) for p in resources.catalog.profiles.values()
    ]
    return sorted(names, key=lambda n: n[1])


def _message(request: Request, resources: Resources, user: User, key: str, code: int) -> HTMLResponse:
    response = page(request, resources, "registry_message.html", user=user, message=key)
    response.status_code = code
    return response


def _not_found(request: Request, resources: Resources, user: User) -> HTMLResponse:
    return _message(request, resources, user, "reg_not_found", status.HTTP_404_NOT_FOUND)


def _forbidden(request: Request, resources: Resources, user: User) -> HTMLResponse:
    return _message(request, resources, user, "reg_forbidden", status.HTTP_403_FORBIDDEN)


@router.get("/console/registry", response_class=HTMLResponse, response_model=None)
def registry_tree(request: Request, resources: ResourcesDep, user: ConsoleUser) -> Response:
    """Towns → communities → grids → buildings, each as far as the user's jurisdiction reaches."""
    with Session(resources.db) as session:
        towns = list(session.scalars(select(RegistryTown).order_by(RegistryTown.id)))
        communities = list(session.scalars(select(RegistryCommunity).order_by(RegistryCommunity.id)))
    views = [v for c in communities if (v := _community_view(resources, user, c.id)) is not None]
    tree = [
        (town, [v for v in views if v.row.town_id == town.id])
        for town in towns
        if sees_town(user, town.id) or any(v.row.town_id == town.id for v in views)
    ]
    return page(request, resources, "registry.html", user=user, tree=tree)


def _community_page(
    request: Request,
    resources: Resources,
    user: User,
    view: CommunityView,
    *,
    refused: Refusal | None = None,
    which: str = "",
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    response = page(
        request,
        resources,
        "registry_community.html",
        user=user,
        view=view,
        manage=may_manage_registry(user, resources.policy, view.row.id),
        profiles=dict(_profiles(resources, language(request))),
        errors=refused.errors if refused else {},
        which=which,
        form=form or {},
    )
    if refused:
        response.status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
    return response


@router.get("/console/registry/{community}", response_class=HTMLResponse, response_model=None)
def community_page(
    community: PathId, request: Request, resources: ResourcesDep, user: ConsoleUser
) -> Response:
    view = _community_view(resources, user, community)
    if view is None:
        return _not_found(request, resources, user)
    return _community_page(request, resources, user, view)


def _place_form(
    request: Request,
    resources: Resources,
    user: User,
    community: str,
    csrf: str,
    which: str,
    form: dict[str, str],
    change: Callable[[Session], Any],
) -> Response:
    """Add a grid, building or gateway from the community page's forms."""
    check_csrf(request, csrf)
    view = _community_view(resources, user, community)
    if view is None:
        return _not_found(request, resources, user)
    if not may_manage_registry(user, resources.policy, community):
        return _forbidden(request, resources, user)
    try:
        _apply(resources, change)
    except RegistryError as err:
        refused = Refusal()
        refused.add(language(request), err, PLACE_FIELDS)
        return _community_page(request, resources, user, view, refused=refused, which=which, form=form)
    return RedirectResponse(f"/console/registry/{community}", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/console/registry/{community}/grids", response_model=None)
def add_grid(
    community: PathId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Text = "",
    id: Text = "",
    name: Text = "",
) -> Response:
    fields = {"id": id.strip(), "name": name.strip()}
    return _place_form(
        request,
        resources,
        user,
        community,
        csrf,
        "grid",
        fields,
        lambda s: editing.add_grid(s, community, fields),
    )


@router.post("/console/registry/{community}/buildings", response_model=None)
def add_building(
    community: PathId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Text = "",
    grid: Text = "",
    id: Text = "",
    name: Text = "",
) -> Response:
    fields = {"id": id.strip(), "name": name.strip()}
    return _place_form(
        request,
        resources,
        user,
        community,
        csrf,
        "building",
        {**fields, "grid": grid},
        lambda s: editing.add_building(s, community, grid.strip(), fields),
    )


@router.post("/console/registry/{community}/gateways", response_model=None)
def add_gateway(
    community: PathId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Text = "",
    id: Text = "",
    name: Text = "",
) -> Response:
    fields = {"id": id.strip(), "name": name.strip()}
    return _place_form(
        request,
        resources,
        user,
        community,
        csrf,
        "gateway",
        fields,
        lambda s: editing.add_gateway(s, community, fields),
    )


def _device_page(
    request: Request,
    resources: Resources,
    user: User,
    view: CommunityView,
    *,
    device: RegistryDevice | None,
    form: dict[str, str],
    refused: Refusal | None = None,
) -> HTMLResponse:
    response = page(
        request,
        resources,
        "registry_device.html",
        user=user,
        view=view,
        device=device,
        form=form,
        profiles=_profiles(resources, language(request)),
        states=STATES,
        errors=refused.errors if refused else {},
    )
    if refused:
        response.status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
    return response


def _managed_view(
    request: Request, resources: Resources, user: User, community: str
) -> CommunityView | HTMLResponse:
    view = _community_view(resources, user, community)
    if view is None:
        return _not_found(request, resources, user)
    if not may_manage_registry(user, resources.policy, community):
        return _forbidden(request, resources, user)
    return view


@router.get("/console/registry/{community}/devices/new", response_class=HTMLResponse, response_model=None)
def new_device_form(
    community: PathId, request: Request, resources: ResourcesDep, user: ConsoleUser
) -> Response:
    view = _managed_view(request, resources, user, community)
    if isinstance(view, HTMLResponse):
        return view
    return _device_page(request, resources, user, view, device=None, form={"state": "active"})


def _given(**values: str) -> dict[str, str]:
    """The form's filled-in fields, trimmed; an empty field is left out (the model's default)."""
    return {k: v.strip() for k, v in values.items() if v.strip()}


@router.post("/console/registry/{community}/devices", response_model=None)
def add_device(
    community: PathId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Text = "",
    id: Text = "",
    type: Text = "",
    gateway: Text = "",
    grid: Text = "",
    building: Text = "",
    location: Text = "",
    lat: Text = "",
    lon: Text = "",
    installed: Text = "",
    state: Text = "",
) -> Response:
    check_csrf(request, csrf)
    view = _managed_view(request, resources, user, community)
    if isinstance(view, HTMLResponse):
        return view
    form = _given(
        id=id,
        type=type,
        gateway=gateway,
        grid=grid,
        building=building,
        location=location,
        lat=lat,
        lon=lon,
        installed=installed,
        state=state,
    )
    fields = {k: v for k, v in form.items() if k != "gateway"}
    known = set(resources.catalog.profiles)
    try:
        if not gateway.strip():
            raise RegistryError("gateway", "choose the gateway the device is wired to")
        _apply(resources, lambda s: editing.add_device(s, community, gateway.strip(), fields, known))
    except RegistryError as err:
        refused = Refusal()
        refused.add(language(request), err, DEVICE_FIELDS)
        return _device_page(request, resources, user, view, device=None, form=form, refused=refused)
    return RedirectResponse(f"/console/registry/{community}", status_code=status.HTTP_303_SEE_OTHER)


def _device_form(row: RegistryDevice) -> dict[str, str]:
    return {
        "id": row.id,
        "type": row.type,
        "gateway": row.gateway_id,
        "grid": row.grid_id,
        "building": row.building_id or "",
        "location": row.location,
        "lat": "" if row.lat is None else str(row.lat),
        "lon": "" if row.lon is None else str(row.lon),
        "installed": row.installed.isoformat() if row.installed else "",
        "state": row.state,
    }


def _visible_device(view: CommunityView, device: str) -> RegistryDevice | None:
    return next((d for d in view.devices if d.id == device), None)


@router.get(
    "/console/registry/{community}/devices/{device}/edit", response_class=HTMLResponse, response_model=None
)
def edit_device_form(
    community: PathId, device: PathId, request: Request, resources: ResourcesDep, user: ConsoleUser
) -> Response:
    view = _managed_view(request, resources, user, community)
    if isinstance(view, HTMLResponse):
        return view
    row = _visible_device(view, device)
    if row is None:
        return _not_found(request, resources, user)
    return _device_page(request, resources, user, view, device=row, form=_device_form(row))


@router.post("/console/registry/{community}/devices/{device}", response_model=None)
def change_device(
    community: PathId,
    device: PathId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Text = "",
    gateway: Text = "",
    grid: Text = "",
    building: Text = "",
    location: Text = "",
    lat: Text = "",
    lon: Text = "",
    installed: Text = "",
    state: Text = "",
    confirm_retire: Text = "",
) -> Response:
    """Move (grid, building, gateway), describe, put in maintenance or retire (confirmed) a device."""
    check_csrf(request, csrf)
    view = _managed_view(request, resources, user, community)
    if isinstance(view, HTMLResponse):
        return view
    row = _visible_device(view, device)
    if row is None:
        return _not_found(request, resources, user)
    form = {
        **_device_form(row),
        **_given(gateway=gateway, grid=grid, state=state),
        "building": building.strip(),
        "location": location.strip(),
        "lat": lat.strip(),
        "lon": lon.strip(),
        "installed": installed.strip(),
    }
    # Emptied fields clear what was stored (no building, no coordinates, no installation date).
    change: dict[str, Any] = {k: form[k] or None for k in ("building", "lat", "lon", "installed")}
    change |= {"location": form["location"], "gateway": form["gateway"], "grid": form["grid"]}
    change["state"] = form["state"]
    known = set(resources.catalog.profiles)
    try:
        retiring = form["state"] == DeviceState.RETIRED.value and row.state != DeviceState.RETIRED.value
        if retiring and confirm_retire != "yes":
            raise RegistryError("state", TEXT[language(request)]["reg_confirm_retire_needed"])
        _apply(resources, lambda s: editing.change_device(s, community, device, change, known))
    except RegistryError as err:
        refused = Refusal()
        refused.add(language(request), err, DEVICE_FIELDS)
        return _device_page(request, resources, user, view, device=row, form=form, refused=refused)
    return RedirectResponse(f"/console/registry/{community}", status_code=status.HTTP_303_SEE_OTHER)
