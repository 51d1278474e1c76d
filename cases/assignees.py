"""Who may be named on a case: an assignee, a visitor, the handler of a called department.

A name is chosen from the people of the case's unit, never typed freely: for a grid case, its grid's
duty roster (on duty first) and staff, the operators of the town that owns it, then the staff of the
town's other grids (a neighbour may help); for a call-up, the people of the department called.
Anything else is refused with the name and the choices (HTTP 422): ``nobody.here`` never becomes an
assignee. Which grids lie in which town is the registry's to say (``grid_towns``); without it, grid
staff of any grid are accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cases.models import Case
from cases.organisation import GRID_STAFF, Organisation, Person, Roster
from cases.workflow import InvalidAction
from contract.catalog import Catalog


class CasePlace(Protocol):
    """Where a case is: a stored case, or one as the API shows it."""

    @property
    def community(self) -> str: ...
    @property
    def grid(self) -> str: ...
    @property
    def owner_town(self) -> str | None: ...


# Parameters that name a person of the case's unit.
PERSON_PARAMS = ("assignee", "visitor")


def grid_towns(catalog: Catalog, organisation: Organisation) -> dict[str, str]:
    """Grid id → the town it lies in (through its community)."""
    return {g.id: organisation.town_of(c.id) for c in catalog.communities.values() for g in c.grids}


def candidates(
    organisation: Organisation,
    roster: Roster | None,
    case: CasePlace,
    department: str | None = None,
    towns: Mapping[str, str] | None = None,
) -> list[Person]:
    """The people who may be named on ``case``, the closest first; with ``department`` (a call-up),
    that department's people. ``towns``: grid → town (None: grid staff of any grid are accepted)."""
    if department is not None:
        return organisation.members(department)
    named = [roster.on_duty(), roster.primary, roster.backup] if roster is not None else []
    town = case.owner_town or organisation.town_of(case.community)
    neighbours = [
        p.username
        for p in organisation.people
        if p.role in GRID_STAFF and (towns is None or towns.get(p.unit) == town)
    ]
    usernames = [
        *named,
        *(p.username for p in organisation.members(case.grid)),
        *(p.username for p in organisation.members(town)),
        *neighbours,
    ]
    people = (organisation.person(u) for u in dict.fromkeys(usernames))
    return [p for p in people if p is not None]


def check_named_people(
    organisation: Organisation,
    roster_of: Callable[[str], Roster | None],
    case: Case,
    action: str,
    params: Mapping[str, Any] | None,
    towns: Mapping[str, str] | None = None,
) -> None:
    """InvalidAction naming a person parameter that is no one of the case's unit, with the choices.

    ``roster_of``: a grid's current duty roster (read only when a person is named).
    """
    params = params or {}
    department = str(params["department"]) if action == "call_up" and params.get("department") else None
    if department is not None and organisation.department(department) is None:
        return  # the workflow refuses the unknown department itself
    for key in PERSON_PARAMS:
        name = params.get(key)
        if name in (None, ""):
            continue
        people = candidates(organisation, roster_of(case.grid), case, department, towns)
        if all(p.username != name for p in people):
            unit = department or case.grid
            shown = (
                ", ".join(f"{p.username} ({p.name})" for p in people[:12]) or "nobody: set its roster first"
            )
            more = f" and {len(people) - 12} more" if len(people) > 12 else ""
            raise InvalidAction(
                f"{key} {name!r} is not among the people of {unit}; choose one of: {shown}{more}"
            )
