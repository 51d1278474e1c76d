"""The console's page for public reporting channels (#22): the 12345 hotline, the public page, a
mini-program — each with its key, shown once at creation; admins and district operators only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import StringConstraints

from api.accounts import User, list_accounts
from api.console.web import ConsoleUser, check_csrf, page, templates
from api.deps import Resources, ResourcesDep
from api.params import MAX_ROW_ID
from api.scope import may_manage_channels
from cases.public_channels import (
    MAX_NAME,
    Channel,
    ChannelRefused,
    create_channel,
    disable_channel,
    find_channel,
    list_channels,
    reachable_communities,
    reports_per_channel,
)

router = APIRouter(include_in_schema=False)
CHANNELS = "/console/channels"
MAX_COMMUNITIES = 200  # per channel made here; a whole town is one choice
# The navigation shows the channels link only to whom may manage channels.
templates.env.globals.update(may_manage_channels=may_manage_channels)

Csrf = Annotated[str, Form(max_length=64)]
CommunityId = Annotated[str, StringConstraints(max_length=64)]
# ChannelRefused's messages (English, for the API) → the page's sentence in the user's language.
_REFUSALS = (
    ("unknown community", "chn_err_unknown_community"),
    ("unknown town", "chn_err_unknown_town"),
    ("name the communities", "chn_err_nowhere"),
    ("already a channel named", "chn_err_taken"),
    ("a channel's name has", "chn_err_name"),
)


def refusal_key(err: ChannelRefused) -> str:
    message = str(err)
    return next((key for words, key in _REFUSALS if words in message), "chn_err_refused")


@dataclass(frozen=True, slots=True)
class ChannelForm:
    """What the person chose in the create form: shown again, as chosen, when it is refused."""

    name: str = ""
    town: str = ""
    communities: frozenset[str] = field(default_factory=frozenset)
    serves_page: bool = False


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """A channel as the page lists it: places and people by name, the reports it filed."""

    channel: Channel
    town: str | None  # the town's name, when it was made for a town
    communities: list[str]  # names; those no longer in the catalogue are counted in ``gone``
    gone: int
    creator: str
    reports: int


def _rows(resources: Resources) -> list[ChannelRow]:
    communities = resources.catalog.communities
    towns = {t.id: t.name for t in resources.policy.organisation.towns}
    channels = list_channels(resources.db)
    counts = reports_per_channel(resources.db)
    names = {a.user.username: a.user.display_name for a in list_accounts(resources.db)} if channels else {}
    return [
        ChannelRow(
            channel=c,
            town=towns.get(c.town, "") if c.town else None,
            communities=[communities[i].name for i in c.communities if i in communities],
            gone=sum(1 for i in c.communities if i not in communities),
            creator=names.get(c.created_by) or c.created_by,
            reports=counts.get(c.id, 0),
        )
        for c in channels
    ]


def _channels_page(
    request: Request,
    resources: Resources,
    user: User,
    *,
    made: tuple[Channel, str] | None = None,
    error: str | None = None,
    form: ChannelForm | None = None,
    code: int = status.HTTP_200_OK,
) -> Response:
    if not may_manage_channels(user):
        response = page(request, resources, "channels.html", user=user, forbidden=True)
        response.status_code = status.HTTP_403_FORBIDDEN
        return response
    response = page(
        request,
        resources,
        "channels.html",
        user=user,
        forbidden=False,
        rows=_rows(resources),
        towns=resources.policy.organisation.towns,
        communities=list(resources.catalog.communities.values()),
        made=made[0] if made else None,
        key=made[1] if made else None,
        error=error,
        form=form or ChannelForm(),
        max_name=MAX_NAME,
        max_communities=MAX_COMMUNITIES,
    )
    response.status_code = code
    if made:  # the key is on this page: never kept by a cache, never sent on as a referrer
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get(CHANNELS, response_class=HTMLResponse, response_model=None)
def channels_page(request: Request, resources: ResourcesDep, user: ConsoleUser) -> Response:
    return _channels_page(request, resources, user)


@router.post(CHANNELS, response_model=None)
def create(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    name: Annotated[str, Form(max_length=MAX_NAME)] = "",
    town: Annotated[str, Form(max_length=64)] = "",
    communities: Annotated[list[CommunityId], Form(max_length=MAX_COMMUNITIES)] = [],  # noqa: B006 - FastAPI copies it
    serves_page: Annotated[str, Form(max_length=5)] = "",
    csrf: Csrf = "",
) -> Response:
    """A new channel; the page shows its key this once (a refusal: the form again, as it was filled)."""
    check_csrf(request, csrf)
    request.state.actor = user.username
    if not may_manage_channels(user):
        return _channels_page(request, resources, user)
    form = ChannelForm(name, town, frozenset(communities), serves_page in ("on", "true"))
    try:
        reach = reachable_communities(
            resources.policy.organisation, resources.catalog.communities, communities, town or None
        )
        made = create_channel(
            resources.db, name, reach, town=town or None, serves_page=form.serves_page, actor=user.username
        )
    except ChannelRefused as err:
        return _channels_page(
            request,
            resources,
            user,
            error=refusal_key(err),
            form=form,
            code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    return _channels_page(request, resources, user, made=made)


@router.post(CHANNELS + "/{channel_id}/disable", response_model=None)
def disable(
    channel_id: int, request: Request, resources: ResourcesDep, user: ConsoleUser, csrf: Csrf = ""
) -> Response:
    """Its key stops working at once; its reports keep their origin."""
    check_csrf(request, csrf)
    request.state.actor = user.username
    if not may_manage_channels(user):
        return _channels_page(request, resources, user)
    if not 1 <= channel_id <= MAX_ROW_ID or find_channel(resources.db, channel_id) is None:
        gone = status.HTTP_404_NOT_FOUND
        return _channels_page(request, resources, user, error="chn_err_unknown", code=gone)
    disable_channel(resources.db, channel_id)
    return RedirectResponse(CHANNELS, status_code=status.HTTP_303_SEE_OTHER)
