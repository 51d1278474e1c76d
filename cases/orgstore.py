"""The organisation as it stands now: ``config/organisation.yaml`` overlaid with changes made through the API.

Config is the baseline; rows of ``org_people``, ``org_departments`` and ``roster_overrides`` replace or
add to it, and a category stored with its department (``case_categories``) is listed under that
department alone. A deactivated person disappears from the organisation but not from the database, and cases
keep their name. Every change is checked against the whole organisation before it is stored, so what
is stored always makes a valid organisation with the config it was made against. Other processes see a
change within ``ttl``; the process that made it, at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cases.category_store import stored_departments
from cases.models import DepartmentOverride, PersonOverride
from cases.organisation import GRID_STAFF, Department, Organisation, Person, Roster
from cases.rosters import RosterOverride

log = logging.getLogger(__name__)


class OrganisationError(ValueError):
    """A change that would leave the organisation inconsistent (HTTP 422)."""


class OrganisationConflict(OrganisationError):
    """A change refused because of what else depends on it, e.g. a roster naming the person (HTTP 409)."""


class UnknownPerson(LookupError):
    """No active person of that username (HTTP 404)."""


def overlay(
    configured: Organisation,
    people: Sequence[PersonOverride],
    departments: Sequence[DepartmentOverride],
    rosters: Sequence[RosterOverride],
    category_departments: Mapping[str, str] | None = None,
) -> Organisation:
    """The configured organisation with the stored changes applied; raises OrganisationError if invalid.

    ``category_departments``: category → the department its cases go to (stored with the category).
    """
    by_name = {p.username: p for p in configured.people}
    for row in people:
        if row.active:
            by_name[row.username] = Person(
                username=row.username,
                name=row.name,
                role=row.role,  # a Role: validated by the model
                unit=row.unit,
                leader=row.leader,
                reports_to=row.reports_to,
                phone=row.phone,
            )
        else:
            by_name.pop(row.username, None)
    by_id = {d.id: d for d in configured.departments}
    for d in departments:
        by_id[d.id] = Department(id=d.id, name=d.name, categories=list(d.categories), head=d.head)
    for category, department in (category_departments or {}).items():
        by_id = _move_category(by_id, category, department)
    by_unit = {r.unit: r for r in configured.rosters}
    for r in rosters:
        by_unit[r.unit] = Roster(unit=r.unit, primary=r.primary, backup=r.backup, away=list(r.away))
    try:
        return Organisation(
            district=configured.district,
            towns=configured.towns,
            call_up=configured.call_up,
            departments=list(by_id.values()),
            people=list(by_name.values()),
            rosters=list(by_unit.values()),
        )
    except ValidationError as err:
        raise OrganisationError("; ".join(_message(e) for e in err.errors())) from err


def _move_category(by_id: dict[str, Department], category: str, department: str) -> dict[str, Department]:
    if department not in by_id:
        log.error("category %s goes to department %s, which is not in the organisation", category, department)
        return by_id
    moved = {}
    for d in by_id.values():
        kept = [c for c in d.categories if c != category] + ([category] if d.id == department else [])
        moved[d.id] = d if kept == d.categories else d.model_copy(update={"categories": kept})
    return moved


def _message(error: object) -> str:
    assert isinstance(error, dict)
    text = str(error["msg"]).removeprefix("Value error, ")
    where = ".".join(str(part) for part in error.get("loc", ()))
    return f"{where}: {text}" if where else text


class OrganisationStore:
    """Reads the organisation as it stands now (cached for ``ttl``) and records changes to it."""

    def __init__(
        self,
        db: Engine,
        configured: Organisation,
        ttl: timedelta = timedelta(seconds=5),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db, self._configured, self._ttl, self._clock = (
            db,
            configured,
            ttl.total_seconds(),
            clock,
        )
        self._lock = threading.Lock()
        self._cached: tuple[float, Organisation] | None = None

    @property
    def configured(self) -> Organisation:
        return self._configured

    def current(self) -> Organisation:
        cached = self._cached
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        with self._lock:
            with Session(self._db) as session:
                organisation = self._load(session)
            self._cached = (self._clock(), organisation)
            return organisation

    def invalidate(self) -> None:
        self._cached = None

    def _load(self, session: Session) -> Organisation:
        try:
            return self._overlay(session)
        except OrganisationError as err:
            # Only a config edit can get here (every stored change was checked against the config of
            # its day): say so loudly and work with the config rather than stop handling cases.
            log.error(
                "stored organisation changes no longer fit config/organisation.yaml (%s); using config", err
            )
            return self._configured

    def _overlay(
        self,
        session: Session,
        *,
        person: PersonOverride | None = None,
        department: DepartmentOverride | None = None,
    ) -> Organisation:
        people = {r.username: r for r in session.scalars(select(PersonOverride))}
        departments = {r.id: r for r in session.scalars(select(DepartmentOverride))}
        if person is not None:
            people[person.username] = person
        if department is not None:
            departments[department.id] = department
        rosters = session.scalars(select(RosterOverride)).all()
        return overlay(
            self._configured,
            list(people.values()),
            list(departments.values()),
            rosters,
            stored_departments(session),
        )

    def put_person(self, person: Person, author: str, grids: Collection[str] | None = None) -> bool:
        """Create or replace a person; returns whether they are new (or were inactive).

        ``grids`` are the grid ids a grid worker or building head may work for (from the catalog).
        """
        row = _person_row(person, active=True, author=author)
        with Session(self._db) as session, session.begin():
            existed = self._overlay(session).person(person.username) is not None
            self._overlay(session, person=row)
            if grids is not None and person.role in GRID_STAFF and person.unit not in grids:
                raise OrganisationError(f"{person.username}: unknown grid {person.unit!r}")
            session.merge(row)
        self.invalidate()
        return not existed

    def deactivate_person(self, username: str, author: str) -> None:
        """Take a person out; refused while a roster, department or person relies on them."""
        with Session(self._db) as session, session.begin():
            found = self._overlay(session).person(username)
            if found is None:
                raise UnknownPerson(f"no active person {username!r}")
            row = _person_row(found, active=False, author=author)
            try:
                self._overlay(session, person=row)
            except OrganisationError as err:
                raise OrganisationConflict(f"{username} cannot be deactivated yet: {err}") from err
            session.merge(row)
        self.invalidate()

    def put_department(self, department: Department, author: str, categories: Collection[str]) -> None:
        """Create or replace a district department; ``categories`` are the case categories that exist."""
        unknown = sorted(set(department.categories) - set(categories))
        if unknown:
            raise OrganisationError(
                f"department {department.id}: unknown categories {', '.join(unknown)}; "
                f"known: {', '.join(sorted(categories))}"
            )
        row = DepartmentOverride(
            id=department.id,
            name=department.name,
            categories=list(department.categories),
            head=department.head,
            updated_by=author,
            updated_at=datetime.now(UTC),
        )
        with Session(self._db) as session, session.begin():
            self._overlay(session, department=row)
            session.merge(row)
        self.invalidate()


def _person_row(person: Person, *, active: bool, author: str) -> PersonOverride:
    return PersonOverride(
        username=person.username,
        name=person.name,
        role=person.role,
        unit=person.unit,
        leader=person.leader,
        reports_to=person.reports_to,
        phone=person.phone,
        active=active,
        updated_by=author,
        updated_at=datetime.now(UTC),
    )
