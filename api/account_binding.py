"""Accounts bound to the organisation's people: which roles suit a person, and the jurisdiction each
role then has, taken from the person's unit (a grid, a town, a department or the district).

The account's username is the person's; the API, the console and `yiwang user` all go through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from api import accounts
from api.account_links import Link, issue_link
from api.accounts import ROLES, Account, User
from cases.organisation import Organisation, Person
from contract.catalog import load_catalog
from registry.models import RegistryGrid

# The kind of unit a role's jurisdiction fields point at (api.accounts.ROLES).
UNIT_KIND = {(): "district", ("town",): "town", ("department",): "department", ("community", "grid"): "grid"}


class AccountRefused(ValueError):
    """The request does not fit the organisation (HTTP 422); the message says what to fix."""


class AccountExists(ValueError):
    """The person has an account already (HTTP 409)."""


def unit_kind(organisation: Organisation, unit: str) -> str:
    """district, town, department or grid (people's units were checked when the person was stored)."""
    if unit == organisation.district.id:
        return "district"
    if any(t.id == unit for t in organisation.towns):
        return "town"
    if organisation.department(unit) is not None:
        return "department"
    return "grid"


def roles_for(organisation: Organisation, person: Person) -> list[str]:
    """The account roles that suit the person's unit; the person's own role first."""
    kind = unit_kind(organisation, person.unit)
    fitting = [r for r, fields in ROLES.items() if UNIT_KIND.get(fields) == kind]
    own = person.role
    return sorted(fitting, key=lambda r: (r != own, r))


def account_unit(organisation: Organisation, user: User) -> str:
    """The unit an account's jurisdiction names: its grid, town or department, else the district."""
    return user.grid or user.town or user.department or organisation.district.id


@dataclass(frozen=True, slots=True)
class Binding:
    """What an account of ``person`` with ``role`` is: its display name and jurisdiction."""

    person: Person
    role: str
    scope: dict[str, str | None]


def bind(organisation: Organisation, grids: Mapping[str, str], username: str, role: str | None) -> Binding:
    """The account a person of the organisation gets with ``role`` (None: the person's own).

    ``grids``: grid id → community id (the registry's). AccountRefused names what does not fit.
    """
    person = organisation.person(username)
    if person is None:
        raise AccountRefused(
            f"{username!r} is not among the organisation's people; add the person first "
            "(PUT /api/v1/organisation/people/{username})"
        )
    fitting = roles_for(organisation, person)
    chosen = role or person.role
    if chosen not in fitting:
        raise AccountRefused(
            f"{username} works for {person.unit}: role {chosen!r} does not suit; one of {', '.join(fitting)}"
        )
    scope: dict[str, str | None] = {"town": None, "community": None, "grid": None, "department": None}
    kind = unit_kind(organisation, person.unit)
    if kind == "town":
        scope["town"] = person.unit
    elif kind == "department":
        scope["department"] = person.unit
    elif kind == "grid":
        community = grids.get(person.unit)
        if community is None:
            raise AccountRefused(f"{username} works for {person.unit!r}, which is no grid of the registry")
        scope |= {"community": community, "grid": person.unit}
    return Binding(person, chosen, scope)


def create_account(db: Engine, binding: Binding, created_by: str) -> Link:
    """The person's account, without a password, and the welcome link to set one."""
    person = binding.person
    if accounts.find_user(db, person.username) is not None:
        raise AccountExists(f"{person.username} has an account already; reset it to send a new link")
    accounts.create_user(
        db,
        person.username,
        None,
        binding.role,
        person.name,
        person=person.username,
        **binding.scope,
    )
    return issue_link(db, person.username, "welcome", created_by)


def change_role(db: Engine, binding: Binding) -> None:
    accounts.change_role(db, binding.person.username, binding.role, binding.scope)


def set_active(db: Engine, account: Account, active: bool) -> None:
    """Deactivate (sessions, tokens and links end at once) or reactivate an account."""
    if active:
        accounts.reactivate(db, account.user.username)
    else:
        accounts.deactivate(db, account.user.username)


def stored_grids(db: Engine, config_dir: Path) -> dict[str, str]:
    """Grid id → community id for a process without the live catalog (the CLI, the demo): the
    registry's, or the community files' while the registry was never seeded."""
    with Session(db) as session:
        rows = session.execute(select(RegistryGrid.id, RegistryGrid.community_id)).all()
    if rows:
        return {str(grid): str(community) for grid, community in rows}
    return {g.id: c.id for c in load_catalog(config_dir).communities.values() for g in c.grids}
