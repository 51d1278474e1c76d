"""Residents' reports through public channels: per-channel keys, rate-limited, never a staff token (#22).

Admins and district operators manage the channels (``/api/v1/channels``; a key is shown once, at
creation). Open311 and the public page (/report) file through :func:`file_report`, the one path from a
resident's words to a case: photos are checked before anything is stored, so a refused photo leaves no
case; the report joins the same intake as the console's (merging with an open case of its grid and
category); its status link's token is returned once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.deps import CurrentUser, Resources, ResourcesDep
from api.errors import problem
from api.params import MAX_ROW_ID
from api.ratelimit import WindowQuota, client_address
from api.scope import may_manage_channels
from cases.actions import CaseFlow, Report
from cases.attachments import save_photo
from cases.photos import MAX_PHOTO_BYTES, MAX_PHOTOS_PER_REQUEST, PhotoRefused, PreparedPhoto, prepare_photo
from cases.public_channels import (
    Channel,
    ChannelRefused,
    Place,
    create_channel,
    disable_channel,
    find_channel,
    list_channels,
    reachable_communities,
    record_request,
)
from cases.workflow import InvalidAction

router = APIRouter(
    tags=["public channels"],
    responses={
        401: problem("Missing, unknown or revoked token"),
        403: problem("Only admins and district operators manage public channels"),
    },
)

REPORT_PATH = "/report"
# Three photos at their largest, and the form's words: the body limit for the public page's post.
REPORT_MAX_BYTES = MAX_PHOTOS_PER_REQUEST * MAX_PHOTO_BYTES + 64 * 1024
PER_CLIENT_PER_HOUR = 10
PER_KEY_PER_HOUR = 600
MAX_DESCRIPTION = 2000
MAX_LOCATION = 256
# Digits, spaces and dashes, an optional +: a mainland mobile (11 digits) or a landline with its area code.
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,22}$")


class ReportRefused(Exception):
    """A report not filed: ``key`` names the page's catalogue entry, ``message`` says it in English."""

    def __init__(self, key: str, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.key, self.message, self.status_code = key, message, status_code


class TooManyReports(ReportRefused):
    def __init__(self, retry_after_s: float, who: str) -> None:
        self.retry_after = max(1, math.ceil(retry_after_s))
        super().__init__(
            "pub_too_many",
            f"too many reports from this {who}: try again in {self.retry_after} seconds",
            status.HTTP_429_TOO_MANY_REQUESTS,
        )


@dataclass(slots=True)
class PublicQuotas:
    """Reports per client address and per channel key, per hour; one set per app."""

    per_client: WindowQuota
    per_key: WindowQuota


def public_quotas(request: Request) -> PublicQuotas:
    state = request.app.state
    quotas: PublicQuotas | None = getattr(state, "public_quotas", None)
    if quotas is None:
        quotas = state.public_quotas = PublicQuotas(
            WindowQuota(PER_CLIENT_PER_HOUR), WindowQuota(PER_KEY_PER_HOUR)
        )
    return quotas


def spend_quota(request: Request, resources: Resources, channel: Channel) -> None:
    """Count one report against the client and the channel; TooManyReports when either is spent."""
    quotas = public_quotas(request)
    client = client_address(request, resources.settings.proxy_networks())
    wait = quotas.per_client.take(f"{channel.id}:{client}")
    if wait:
        raise TooManyReports(wait, "address")
    wait = quotas.per_key.take(str(channel.id))
    if wait:
        raise TooManyReports(wait, "channel")


@dataclass(frozen=True, slots=True)
class ResidentReport:
    category: str
    description: str
    place: Place
    location: str = ""
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Filed:
    case_id: int
    merged_into: int | None
    token: str  # the status link's, shown once


def checked_description(text: str) -> str:
    """The resident's words, kept as written (shown as text everywhere), within bounds."""
    text = text.strip()
    if not text:
        raise ReportRefused("pub_no_description", "describe the problem (description is required)")
    if len(text) > MAX_DESCRIPTION:
        raise ReportRefused(
            "pub_description_long", f"the description is too long: at most {MAX_DESCRIPTION} characters"
        )
    return text


def checked_phone(text: str) -> str | None:
    """A phone number for the return visit, or None when left empty."""
    text = text.strip()
    if not text:
        return None
    digits = re.sub(r"[^0-9]", "", text)
    if not _PHONE.match(text) or not 7 <= len(digits) <= 15:
        raise ReportRefused(
            "pub_bad_phone", "the phone number is not valid: 7 to 15 digits, e.g. 13900000000"
        )
    return ("+" if text.startswith("+") else "") + digits


def checked_category(resources: Resources, code: str) -> str:
    if code not in resources.categories:
        raise ReportRefused("pub_no_category", "choose a category from the list")
    return code


def prepared_photos(files: list[bytes]) -> list[PreparedPhoto]:
    """Every photo checked and re-encoded before anything is stored (one refused: none is kept)."""
    if len(files) > MAX_PHOTOS_PER_REQUEST:
        raise ReportRefused("pub_too_many_photos", f"at most {MAX_PHOTOS_PER_REQUEST} photos per report", 413)
    try:
        return [prepare_photo(data) for data in files]
    except PhotoRefused as err:
        raise ReportRefused(err.key, err.message, err.status) from err


def file_report(
    resources: Resources, channel: Channel, report: ResidentReport, photos: list[PreparedPhoto]
) -> Filed:
    """Open (or merge) the case, then keep its photos and the status link's token."""
    if not channel.reaches(report.place.community):
        raise ReportRefused("pub_outside", "that place is outside the channel's communities", 403)
    actor = f"public:{channel.name}"
    intake = Report(
        report.place.community,
        report.place.grid,
        report.category,
        report.description,
        report.location[:MAX_LOCATION],
        report.phone,
    )
    tokens: list[str] = []

    def keep_photos_and_link(session: Session, case_id: int) -> None:
        for photo in photos:
            save_photo(session, resources.attachments, case_id=case_id, photo=photo, actor=actor)
        tokens.append(record_request(session, case_id, channel, report.place, datetime.now(UTC)))

    try:
        case_id, merged = CaseFlow(resources.db, resources.policy).report(
            intake, actor=actor, along=keep_photos_and_link
        )
    except InvalidAction as err:
        raise ReportRefused("pub_refused", str(err)) from err
    return Filed(case_id, merged, tokens[0])


class ChannelIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="What the channel is, e.g. 12345 热线.")
    communities: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=200)
    town: str | None = Field(default=None, max_length=64, description="All the communities of a town.")
    serves_page: bool = Field(default=False, description="The public page /report files through it.")


def _manager(user: CurrentUser) -> None:
    if not may_manage_channels(user):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "public channels are managed by admins and district operators"
        )


@router.post(
    "/api/v1/channels",
    status_code=status.HTTP_201_CREATED,
    responses={422: problem("An unknown community or town, a name taken, or nothing to report into")},
)
def add_channel(
    user: CurrentUser, resources: ResourcesDep, body: Annotated[ChannelIn, Body()]
) -> dict[str, Any]:
    """A new channel; the answer carries its ``key``, shown this once and never again."""
    _manager(user)
    try:
        communities = reachable_communities(
            resources.policy.organisation, resources.catalog.communities, body.communities, body.town
        )
        channel, key = create_channel(
            resources.db,
            body.name,
            communities,
            town=body.town,
            serves_page=body.serves_page,
            actor=user.username,
        )
    except ChannelRefused as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    return channel.public() | {"key": key}


@router.get("/api/v1/channels")
def get_channels(user: CurrentUser, resources: ResourcesDep) -> list[dict[str, Any]]:
    _manager(user)
    return [c.public() for c in list_channels(resources.db)]


@router.delete(
    "/api/v1/channels/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: problem("No such channel"), 422: problem("Bad parameters")},
)
def remove_channel(channel_id: int, user: CurrentUser, resources: ResourcesDep) -> Response:
    """Disable a channel: its key stops working at once; its reports keep their origin."""
    _manager(user)
    if not 1 <= channel_id <= MAX_ROW_ID or find_channel(resources.db, channel_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no channel {channel_id}")
    disable_channel(resources.db, channel_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
