"""The organisation through the API: read it, change duty rosters, people and district departments.

Config (``config/organisation.yaml``) is the baseline and changes are stored beside it
(``cases.orgstore``); case assignment, escalation and notifications use the result. District staff
change anything; a town operator changes the rosters and people of their own town and its grids.
Phone numbers are personal data: no listing returns them. Writes are audited by the middleware.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api import accounts
from api.accounts import User
from api.deps import CurrentUser, ResourcesDep
from api.errors import problem
from api.scope import may_change_departments, may_change_roster, may_manage_person, sees_phone_of
from cases.categories import CategoryCode
from cases.organisation import PHONE_PATTERN, USERNAME_PATTERN, Department, Person, Role, Roster
from cases.orgstore import OrganisationConflict, OrganisationStore, UnknownPerson
from cases.rosters import current_roster, set_roster
from contract.ids import ID_PATTERN, Id

router = APIRouter(prefix="/api/v1/organisation", tags=["organisation"])
Username = Annotated[str, Path(pattern=USERNAME_PATTERN, description="The person's username.")]
UnitId = Annotated[str, Path(pattern=ID_PATTERN)]


class RosterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    primary: str
    backup: str
    away: list[str] = Field(default_factory=list)


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    role: Role
    unit: Id = Field(description="A grid (grid worker, building head), town, department or the district.")
    leader: bool = Field(default=False, description="Leads the unit: gets its level-2 supervision orders.")
    reports_to: str | None = Field(default=None, description="Username of the person they answer to.")
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN, description="Private; never listed.")


class DepartmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    categories: list[CategoryCode] = Field(default_factory=list, description="Case categories it accepts.")
    head: str | None = Field(default=None, description="Username of its head, one of its people.")


def _store(resources: ResourcesDep) -> OrganisationStore:
    store = resources.policy.store
    if store is None:  # create_app always binds the policy to the database
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the organisation is read-only here")
    return store


def _grid_community(resources: ResourcesDep) -> dict[str, str]:
    return {g.id: c.id for c in resources.catalog.communities.values() for g in c.grids}


@router.get("")
def organisation(resources: ResourcesDep, _user: CurrentUser) -> dict[str, Any]:
    """The organisation as it stands now: config plus people, departments and rosters changed at run time."""
    org = resources.policy.organisation
    document = org.model_dump()  # phone numbers are excluded by the model
    units = {r.unit for r in org.rosters} | _roster_units(resources)
    document["rosters"] = [
        r.model_dump() for u in sorted(units) if (r := current_roster(resources.db, org, u))
    ]
    return document


def _roster_units(resources: ResourcesDep) -> set[str]:
    return set(_grid_community(resources)) | {d.id for d in resources.policy.organisation.departments}


@router.put(
    "/rosters/{unit}",
    responses={
        403: problem("Not your unit"),
        404: problem("No such unit"),
        422: problem("Someone on the roster is not among the organisation's people"),
    },
)
def put_roster(unit: str, body: RosterIn, resources: ResourcesDep, user: CurrentUser) -> dict[str, Any]:
    """Change who is on duty for a grid or department (e.g. the primary is on leave: put them in ``away``)."""
    if unit not in _roster_units(resources):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no grid or department {unit!r}")
    if not may_change_roster(user, resources.policy, _grid_community(resources).get(unit)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the roster of {unit} is not yours to change")
    roster = Roster(unit=unit, primary=body.primary, backup=body.backup, away=body.away)
    try:
        set_roster(resources.db, resources.policy.organisation, roster, author=user.username)
    except ValueError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    if resources.policy.store is not None:
        resources.policy.store.invalidate()
    return roster.model_dump() | {"on_duty": roster.on_duty()}


def _may_manage(user: User, resources: ResourcesDep, role: str, unit: str) -> bool:
    return may_manage_person(user, resources.policy, resources.catalog, role, unit)


@router.get(
    "/people/{username}",
    responses={404: problem("No active person of that name")},
)
def get_person(username: Username, resources: ResourcesDep, user: CurrentUser) -> dict[str, Any]:
    """One person; the phone number only for district staff and for whoever may manage them."""
    person = resources.policy.organisation.person(username)
    if person is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no active person {username!r}")
    document = person.model_dump()
    if sees_phone_of(user, resources.policy, resources.catalog, person):
        document["phone"] = person.phone
    return document


@router.put(
    "/people/{username}",
    responses={
        201: {"description": "Created"},
        403: problem("Not yours to manage"),
        422: problem("Unknown role, unit, leader or an inconsistent organisation"),
        503: problem("The organisation is read-only here"),
    },
)
def put_person(
    username: Username, body: PersonIn, resources: ResourcesDep, user: CurrentUser, response: Response
) -> dict[str, Any]:
    """Create or replace a person (a deactivated person comes back). Phone numbers are kept, never listed."""
    org = resources.policy.organisation
    units = {org.district.id} | {t.id for t in org.towns} | {d.id for d in org.departments}
    grids = set(_grid_community(resources))
    if body.unit not in units | grids:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"unknown unit {body.unit!r}: not a grid, town, department or the district",
        )
    existing = org.person(username)
    for role, unit in [(body.role, body.unit)] + ([(existing.role, existing.unit)] if existing else []):
        if not _may_manage(user, resources, role, unit):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"a {role} of {unit} is not yours to manage")
    try:
        person = Person(username=username, **body.model_dump())
        created = _store(resources).put_person(person, author=user.username, grids=grids)
    except ValueError as err:  # OrganisationError above all
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    if created:
        response.status_code = status.HTTP_201_CREATED
    return person.model_dump()


@router.delete(
    "/people/{username}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        403: problem("Not yours to manage"),
        404: problem("No active person of that name"),
        409: problem("A roster, department or person still relies on them"),
        503: problem("The organisation is read-only here"),
    },
)
def delete_person(username: Username, resources: ResourcesDep, user: CurrentUser) -> None:
    """Deactivate a person: they leave the organisation, their cases keep their name, and their
    account (if they have one) ends at once — sessions, tokens and unused links with it."""
    person = resources.policy.organisation.person(username)
    if person is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no active person {username!r}")
    if not _may_manage(user, resources, person.role, person.unit):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"a {person.role} of {person.unit} is not yours to manage"
        )
    try:
        _store(resources).deactivate_person(username, author=user.username)
    except UnknownPerson as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    except OrganisationConflict as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    account = accounts.find_account(resources.db, username)
    if account is not None and account.active:
        accounts.deactivate(resources.db, username)


@router.put(
    "/departments/{department_id}",
    responses={
        403: problem("Only district staff change departments"),
        422: problem("Unknown category or head, or the id is taken by a town, grid or the district"),
        503: problem("The organisation is read-only here"),
    },
)
def put_department(
    department_id: UnitId, body: DepartmentIn, resources: ResourcesDep, user: CurrentUser
) -> dict[str, Any]:
    """Create or replace a district department: its name, the categories it accepts, its head."""
    if not may_change_departments(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only district staff change departments")
    org = resources.policy.organisation
    if department_id in {org.district.id} | {t.id for t in org.towns} | set(_grid_community(resources)):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{department_id!r} is already a town, grid or the district",
        )
    try:
        department = Department(id=department_id, **body.model_dump())
        _store(resources).put_department(department, author=user.username, categories=resources.categories)
    except ValueError as err:  # OrganisationError above all
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    return department.model_dump()
