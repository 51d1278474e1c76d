"""The console's account pages: people of the organisation and their logins (#22), and the welcome page
a person opens from their one-time link to set a password (no sign-in; made for a phone)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import accounts
from api.account_admin import STATUS, AccountAdmin, NotYours
from api.account_binding import AccountRefused
from api.account_links import (
    TOKEN_PATTERN,
    Link,
    LinkRefused,
    LinkState,
    PasswordRefused,
    link_state,
    redeem,
)
from api.accounts import User
from api.console.web import ConsoleUser, check_csrf, page, sign_in_session, templates
from api.deps import Resources, ResourcesDep
from api.scope import may_manage_accounts

router = APIRouter(include_in_schema=False)
USERS = "/console/users"
UsernameForm = Annotated[str, Form(max_length=64)]
# The navigation shows the accounts link only to whom may manage accounts.
templates.env.globals.update(may_manage_accounts=may_manage_accounts)
_ERRORS = {403: "usr_err_not_yours", 404: "usr_err_unknown", 422: "usr_err_refused"}


def _error_key(err: Exception) -> str:
    """The catalogue's sentence for an account error (the API says the same in its detail)."""
    if isinstance(err, AccountRefused) and "your own account" in str(err):
        return "usr_err_self"
    if STATUS[type(err)] == 409:
        return "usr_err_exists" if "has an account" in str(err) else "usr_err_inactive"
    return _ERRORS[STATUS[type(err)]]


def _users_page(
    request: Request,
    resources: Resources,
    user: User,
    *,
    link: Link | None = None,
    error: str | None = None,
    code: int = status.HTTP_200_OK,
) -> Response:
    try:
        admin = AccountAdmin(resources, user)
    except NotYours:
        response = page(request, resources, "users.html", user=user, forbidden=True)
        response.status_code = status.HTTP_403_FORBIDDEN
        return response
    organisation = resources.policy.organisation
    shown, offers = admin.accounts(), admin.people_without_account()
    roles = {a.user.username: admin.roles_for_person(a.person) if a.person else [] for a in shown}
    response = page(
        request,
        resources,
        "users.html",
        user=user,
        forbidden=False,
        accounts=shown,
        roles=roles,
        offers=offers,
        role_names=sorted({r for _, person_roles in offers for r in person_roles}),
        units=_unit_names(resources),
        district=organisation.district.id,
        link=link,
        link_url=str(request.base_url).rstrip("/") + link.path if link else "",
        error=error,
    )
    response.status_code = code
    return response


def _unit_names(resources: Resources) -> dict[str, str]:
    """Unit id → the name people know it by (towns, departments, grids, the district)."""
    org = resources.policy.organisation
    names = {org.district.id: org.district.name}
    names |= {t.id: t.name for t in org.towns} | {d.id: d.name for d in org.departments}
    names |= {g.id: g.name for c in resources.catalog.communities.values() for g in c.grids}
    return names


@router.get(USERS, response_class=HTMLResponse, response_model=None)
def users_page(request: Request, resources: ResourcesDep, user: ConsoleUser) -> Response:
    return _users_page(request, resources, user)


def _act(request: Request, resources: Resources, user: User, csrf: str, work: Any) -> Response:
    """Run one account change from a form; the page again, with the link to hand over or the error."""
    check_csrf(request, csrf)
    request.state.actor = user.username
    try:
        admin = AccountAdmin(resources, user)
        link = work(admin)
    except tuple(STATUS) as err:
        return _users_page(request, resources, user, error=_error_key(err), code=STATUS[type(err)])
    if link is None:
        return RedirectResponse(USERS, status_code=status.HTTP_303_SEE_OTHER)
    return _users_page(request, resources, user, link=link)


@router.post(USERS, response_model=None)
def create(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    username: UsernameForm,
    role: Annotated[str, Form(max_length=32)] = "",
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    return _act(request, resources, user, csrf, lambda admin: admin.create(username, role or None))


@router.post(USERS + "/{username}/reset", response_model=None)
def reset(
    username: str,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    return _act(request, resources, user, csrf, lambda admin: admin.reset(username))


@router.post(USERS + "/{username}", response_model=None)
def change(
    username: str,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    role: Annotated[str, Form(max_length=32)] = "",
    active: Annotated[str, Form(max_length=5)] = "",
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    activation = {"true": True, "false": False}.get(active)

    def work(admin: AccountAdmin) -> None:
        admin.change(username, role=role or None, active=activation)

    return _act(request, resources, user, csrf, work)


# The welcome page: opened from a one-time link, by someone who is not signed in.


def _welcome(request: Request, resources: Resources, token: str, error: str | None, code: int) -> Response:
    # A token of the wrong shape is unknown without asking the database.
    well_formed = re.fullmatch(TOKEN_PATTERN, token) is not None
    state = link_state(resources.db, token) if well_formed else LinkState(None, None, "unknown")
    response = page(
        request,
        resources,
        "welcome.html",
        token=token,
        state=state,
        refusal=("wel_" + state.refusal) if state.refusal else None,
        error=error,
    )
    response.status_code = {"unknown": 404, "expired": 410, "used": 410}.get(state.refusal or "", code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the link's secret stays out of other sites' logs
    return response


@router.get("/console/welcome/{token}", response_class=HTMLResponse, response_model=None)
def welcome_page(request: Request, resources: ResourcesDep, token: str) -> Response:
    return _welcome(request, resources, token, None, status.HTTP_200_OK)


@router.post("/console/welcome", response_model=None)
def set_password(
    request: Request,
    resources: ResourcesDep,
    # In the form, not the path: written requests' paths go to the audit log, which others read.
    token: Annotated[str, Form(max_length=128)],
    password: Annotated[str, Form(max_length=1024)],
    repeat: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Set the password through the link, then sign the person in."""
    check_csrf(request, csrf)
    if password != repeat:
        return _welcome(request, resources, token, "wel_mismatch", status.HTTP_422_UNPROCESSABLE_CONTENT)
    try:
        username = redeem(resources.db, token, password)
    except PasswordRefused as err:
        return _welcome(request, resources, token, "pw_" + err.rule, status.HTTP_422_UNPROCESSABLE_CONTENT)
    except LinkRefused:
        return _welcome(request, resources, token, None, status.HTTP_410_GONE)
    user = accounts.find_user(resources.db, username)
    request.state.actor = username
    if user is not None:
        sign_in_session(request, resources, user)
    return RedirectResponse("/console", status_code=status.HTTP_303_SEE_OTHER)
