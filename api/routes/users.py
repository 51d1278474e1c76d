"""Accounts for the organisation's people: create, list, change, reset and deactivate (#22).

An account belongs to a person of the organisation (``/api/v1/organisation/people``) and takes its
jurisdiction from the person's unit. A new account has no password: the answer carries a one-time link
(72 h, single use) the person opens to set one; a reset sends a new link and ends the old password.
Deactivating ends the account's console sessions and API tokens at once. An admin manages every
account; a town operator those of the grid staff and operators of their own town. Phone numbers are
never part of an answer. Writes are audited by the middleware.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.account_admin import STATUS, AccountAdmin
from api.account_links import Link
from api.accounts import Account
from api.deps import CurrentUser, ResourcesDep
from api.errors import problem
from api.params import Offset
from cases.organisation import USERNAME_PATTERN

router = APIRouter(prefix="/api/v1/users", tags=["users"])
Username = Annotated[
    str, Path(pattern=USERNAME_PATTERN, description="The account's (and person's) username.")
]
T = TypeVar("T")


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN, description="A person of the organisation.")
    role: str | None = Field(
        default=None, max_length=32, description="One that suits the person's unit; none: the person's own."
    )


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str | None = Field(default=None, max_length=32)
    active: bool | None = Field(default=None, description="false: sessions and tokens end at once.")

    @model_validator(mode="after")
    def _something(self) -> UserPatch:
        if all(given is None for given in (self.role, self.active)):
            raise ValueError("give role, active or both")
        return self


class UserOut(BaseModel):
    username: str
    display_name: str
    role: str
    person: str | None = Field(description="The person of the organisation; none for older accounts.")
    town: str | None
    community: str | None
    grid: str | None
    department: str | None
    active: bool
    has_password: bool = Field(description="false until the person used their one-time link.")
    created_at: datetime


class LinkOut(BaseModel):
    username: str
    purpose: str = Field(description="welcome (first password) or reset")
    link: str = Field(description="Hand it to the person: it sets their password, once.")
    expires_at: datetime


class CreatedOut(LinkOut):
    user: UserOut


def user_out(account: Account) -> UserOut:
    u = account.user
    return UserOut(
        username=u.username,
        display_name=u.display_name,
        role=u.role,
        person=account.person,
        town=u.town,
        community=u.community,
        grid=u.grid,
        department=u.department,
        active=account.active,
        has_password=account.has_password,
        created_at=account.created_at,
    )


def link_out(request: Request, link: Link) -> LinkOut:
    url = str(request.base_url).rstrip("/") + link.path
    return LinkOut(username=link.username, purpose=link.purpose, link=url, expires_at=link.expires_at)


def answer(work: Callable[[], T]) -> T:
    """Run ``work``, turning the account errors into their HTTP answers."""
    try:
        return work()
    except tuple(STATUS) as err:
        raise HTTPException(STATUS[type(err)], str(err)) from err


@router.post(
    "",
    response_model=CreatedOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        403: problem("Not yours to manage (another town, or a role above yours)"),
        409: problem("The person has an account already"),
        422: problem("Not a person of the organisation, or a role that does not suit them"),
    },
)
def create(body: UserIn, request: Request, resources: ResourcesDep, user: CurrentUser) -> CreatedOut:
    """An account for a person of the organisation; the answer carries their one-time welcome link."""

    def work() -> CreatedOut:
        admin = AccountAdmin(resources, user)
        link = admin.create(body.username, body.role)
        return CreatedOut(**link_out(request, link).model_dump(), user=user_out(admin.account(body.username)))

    return answer(work)


@router.get("", response_model=list[UserOut], responses={403: problem("Your role manages no accounts")})
def list_users(
    resources: ResourcesDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Offset = 0,
) -> list[UserOut]:
    """The accounts you may manage, by username (never a phone number)."""
    found = answer(lambda: AccountAdmin(resources, user).accounts())
    return [user_out(a) for a in found[offset : offset + limit]]


@router.patch(
    "/{username}",
    response_model=UserOut,
    responses={
        403: problem("Not yours to manage"),
        404: problem("No such account"),
        422: problem("A role that does not suit the person, or deactivating yourself"),
    },
)
def change(username: Username, body: UserPatch, resources: ResourcesDep, user: CurrentUser) -> UserOut:
    """Change the role and/or deactivate (sessions and tokens end at once) or reactivate an account."""
    return answer(
        lambda: user_out(AccountAdmin(resources, user).change(username, role=body.role, active=body.active))
    )


@router.post(
    "/{username}/reset",
    response_model=LinkOut,
    responses={
        403: problem("Not yours to manage"),
        404: problem("No such account"),
        409: problem("The account is deactivated"),
    },
)
def reset(username: Username, request: Request, resources: ResourcesDep, user: CurrentUser) -> LinkOut:
    """A new one-time link for the person; their old password and console sessions end now."""
    return answer(lambda: link_out(request, AccountAdmin(resources, user).reset(username)))
