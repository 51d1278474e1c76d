"""Managing accounts as a signed-in user: the jurisdiction checks around creating, listing, changing,
resetting and deactivating; shared by the API (``api.routes.users``) and the console page.

Errors say what to fix; each maps to one HTTP status (see ``STATUS``).
"""

from __future__ import annotations

from sqlalchemy import Engine

from api import accounts
from api.account_binding import (
    AccountExists,
    AccountRefused,
    Binding,
    account_unit,
    bind,
    change_role,
    create_account,
    roles_for,
    set_active,
)
from api.account_links import Link, issue_link
from api.accounts import Account, User
from api.deps import Resources
from api.scope import may_manage_account, may_manage_accounts
from cases.organisation import Person


class NotYours(PermissionError):
    """Not an account (or a role) the user may manage (HTTP 403)."""


class UnknownAccount(LookupError):
    """No such account (HTTP 404)."""


class AccountInactive(ValueError):
    """The account is deactivated: reactivate it first (HTTP 409)."""


STATUS: dict[type[Exception], int] = {
    NotYours: 403,
    UnknownAccount: 404,
    AccountExists: 409,
    AccountInactive: 409,
    AccountRefused: 422,
}


class AccountAdmin:
    """What ``user`` may do with accounts, within their jurisdiction."""

    def __init__(self, resources: Resources, user: User) -> None:
        self._resources, self._user = resources, user
        if not may_manage_accounts(user):
            raise NotYours(f"a {user.role} does not manage accounts")

    @property
    def _db(self) -> Engine:
        return self._resources.db

    def _grids(self) -> dict[str, str]:
        return {g.id: c.id for c in self._resources.catalog.communities.values() for g in c.grids}

    def _may(self, role: str, unit: str) -> bool:
        resources = self._resources
        return may_manage_account(self._user, resources.policy, resources.catalog, role, unit)

    def _binding(self, username: str, role: str | None) -> Binding:
        binding = bind(self._resources.policy.organisation, self._grids(), username, role)
        if not self._may(binding.role, binding.person.unit):
            raise NotYours(f"a {binding.role} of {binding.person.unit} is not yours to manage")
        return binding

    def accounts(self) -> list[Account]:
        """The accounts the user may manage, by username."""
        organisation = self._resources.policy.organisation
        return [
            a
            for a in accounts.list_accounts(self._db)
            if self._may(a.user.role, account_unit(organisation, a.user))
        ]

    def account(self, username: str) -> Account:
        """One account the user may manage; UnknownAccount or NotYours otherwise."""
        found = accounts.find_account(self._db, username)
        if found is None:
            raise UnknownAccount(f"no account {username!r}")
        if not self._may(found.user.role, account_unit(self._resources.policy.organisation, found.user)):
            raise NotYours(f"the account {username} is not yours to manage")
        return found

    def people_without_account(self) -> list[tuple[Person, list[str]]]:
        """People the user may give an account, with the roles each may have (the allowed ones)."""
        organisation = self._resources.policy.organisation
        taken = {a.user.username for a in accounts.list_accounts(self._db)}
        offers = []
        for person in organisation.people:
            if person.username in taken:
                continue
            roles = [r for r in roles_for(organisation, person) if self._may(r, person.unit)]
            if roles:
                offers.append((person, roles))
        return offers

    def roles_for_person(self, username: str) -> list[str]:
        """The roles the user may give the person's account (none when the person has left)."""
        organisation = self._resources.policy.organisation
        person = organisation.person(username)
        if person is None:
            return []
        return [r for r in roles_for(organisation, person) if self._may(r, person.unit)]

    def create(self, username: str, role: str | None) -> Link:
        """An account for a person of the organisation, and the welcome link to hand them."""
        return create_account(self._db, self._binding(username, role), self._user.username)

    def change(self, username: str, *, role: str | None = None, active: bool | None = None) -> Account:
        """A new role (the jurisdiction follows the person's unit) and/or activation."""
        found = self.account(username)
        current = found.user.role  # a change of role is checked by the binding below, in scope's rules
        if role is not None and role != current:
            if found.person is None:
                raise AccountRefused(
                    f"{username} is bound to no person of the organisation: its role is fixed"
                )
            change_role(self._db, self._binding(found.person, role))
        if active is not None and active != found.active:
            if not active and username == self._user.username:
                raise AccountRefused("you cannot deactivate your own account; ask another admin")
            set_active(self._db, found, active)
        return self.account(username)

    def reset(self, username: str) -> Link:
        """A new one-time link; the old password stops working now."""
        found = self.account(username)
        if not found.active:
            raise AccountInactive(f"the account {username} is deactivated; reactivate it first")
        return issue_link(self._db, username, "reset", self._user.username)
