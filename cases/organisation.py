"""The organisation cases move through: district → towns (镇/街道) → communities, and departments."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cases.categories import CategoryCode
from contract.catalog import load_model
from contract.ids import Id

Role = Literal[
    "grid_worker",
    "building_head",
    "street_steward",
    "town_operator",
    "district_operator",
    "department_handler",
    "supervisor",
    "admin",
]
DISTRICT_STAFF = frozenset({"district_operator", "supervisor", "admin"})
# A street steward (小巷管家) looks after an alley of one grid, scoped like a building head.
GRID_STAFF = frozenset({"grid_worker", "building_head", "street_steward"})
USERNAME_PATTERN = r"^[A-Za-z0-9._@-]{1,64}$"
PHONE_PATTERN = r"^\+?[0-9 -]{5,20}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Unit(_Model):
    id: Id
    name: str


class Town(Unit):
    communities: list[Id] = Field(default_factory=list)


class Department(Unit):
    categories: list[CategoryCode] = Field(default_factory=list, description="Case categories it accepts.")
    head: str | None = Field(
        default=None, description="Who leads it (gets level-2 supervision orders); one of its people."
    )


class CallUp(_Model):
    """镇呼区应: how fast a district department responds to and resolves a town's call."""

    respond_hours: float = Field(default=2, gt=0)
    resolve_hours: float = Field(default=48, gt=0)


class Person(_Model):
    username: str = Field(pattern=USERNAME_PATTERN)
    name: str = Field(min_length=1, max_length=128)
    role: Role
    unit: Id = Field(description="The grid, town, department or district the person works for.")
    leader: bool = Field(default=False, description="Leads their unit (gets its level-2 supervision orders).")
    reports_to: str | None = Field(default=None, description="The username of the person they answer to.")
    # Personal data: used to reach the person (e.g. an @mention in a WeCom/DingTalk group) and never
    # serialised — ``exclude`` keeps it out of every model_dump, hence out of every API listing.
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN, exclude=True, repr=False)


class Roster(_Model):
    """Who is on duty for a unit: the primary, or the backup while the primary is away."""

    unit: Id
    primary: str
    backup: str
    away: list[str] = Field(default_factory=list)

    def on_duty(self) -> str:
        return self.backup if self.primary in self.away else self.primary


class Organisation(_Model):
    district: Unit
    towns: list[Town] = Field(min_length=1)
    departments: list[Department] = Field(default_factory=list)
    call_up: CallUp = Field(default_factory=CallUp)
    people: list[Person] = Field(default_factory=list)
    rosters: list[Roster] = Field(default_factory=list)

    def people_in(self, role: str) -> list[Person]:
        """The people who hold ``role``, in the order the organisation lists them."""
        return [p for p in self.people if p.role == role]

    @model_validator(mode="after")
    def _rosters_name_known_people(self) -> Organisation:
        known = {p.username for p in self.people}
        for roster in self.rosters:
            for who in (roster.primary, roster.backup):
                if who not in known:
                    raise ValueError(f"roster of {roster.unit}: {who!r} is not among people")
        return self

    @model_validator(mode="after")
    def _people_fit_the_organisation(self) -> Organisation:
        """Units suit roles, ``reports_to`` names someone, a department's head works there."""
        towns = {t.id for t in self.towns}
        departments = {d.id for d in self.departments}
        people = {p.username: p for p in self.people}
        if len(people) != len(self.people):
            raise ValueError("people: a username appears twice")
        for p in self.people:
            problem = _unit_problem(p, self.district.id, towns, departments)
            if problem:
                raise ValueError(f"{p.username}: {problem}")
            if p.reports_to is not None and p.reports_to not in people:
                raise ValueError(f"{p.username} reports to {p.reports_to!r}, who is not among people")
        for d in self.departments:
            head = people.get(d.head) if d.head is not None else None
            if d.head is not None and (head is None or head.unit != d.id):
                raise ValueError(f"department {d.id}: head {d.head!r} is not among its people")
        return self

    def person(self, username: str) -> Person | None:
        return next((p for p in self.people if p.username == username), None)

    def roster(self, unit: str) -> Roster | None:
        return next((r for r in self.rosters if r.unit == unit), None)

    def leader_of(self, unit: str) -> str | None:
        """A department's head, else the person flagged ``leader`` of the unit."""
        department = self.department(unit)
        if department is not None and department.head is not None:
            return department.head
        return next((p.username for p in self.people if p.unit == unit and p.leader), None)

    def members(self, unit: str, roles: frozenset[str] | None = None) -> list[Person]:
        return [p for p in self.people if p.unit == unit and (roles is None or p.role in roles)]

    @model_validator(mode="after")
    def _each_community_has_one_town(self) -> Organisation:
        seen: dict[str, str] = {}
        for town in self.towns:
            for community in town.communities:
                if community in seen:
                    raise ValueError(
                        f"community {community!r} belongs to both {seen[community]} and {town.id}"
                    )
                seen[community] = town.id
        return self

    def town_of(self, community: str) -> str:
        return next((t.id for t in self.towns if community in t.communities), "")

    def department(self, department_id: str) -> Department | None:
        return next((d for d in self.departments if d.id == department_id), None)


def _unit_problem(person: Person, district: str, towns: set[str], departments: set[str]) -> str:
    """Why ``person.unit`` does not suit their role ('' when it does); grids are checked by the caller."""
    kinds = {
        district: "the district",
        **dict.fromkeys(towns, "a town"),
        **dict.fromkeys(departments, "a department"),
    }
    expected = {
        "town_operator": (towns, "a town"),
        "department_handler": (departments, "a department"),
        **dict.fromkeys(DISTRICT_STAFF, ({district}, f"the district {district!r}")),
    }.get(person.role)
    if expected is not None and person.unit not in expected[0]:
        return f"a {person.role} works for {expected[1]}; {person.unit!r} is not one"
    if person.role in GRID_STAFF and person.unit in kinds:
        return f"a {person.role} works for a grid; {person.unit!r} is {kinds[person.unit]}"
    return ""


def load_organisation(config_dir: Path) -> Organisation:
    return load_model(Organisation, config_dir / "organisation.yaml")
