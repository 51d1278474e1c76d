"""The console's alert page: what is firing, pending or unknown now, and the silences in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from alerts.models import Alert
from alerts.queries import live_alerts
from alerts.silences import Matchers, Silence, SilenceIn, SilenceStore
from api.accounts import User
from api.console.device import device_url
from api.console.i18n import catalogue
from api.console.names import Names
from api.console.web import ConsoleUser, check_csrf, language, page
from api.deps import Resources, ResourcesDep
from api.params import RowId
from api.scope import area_filter, may_manage_silences, may_silence, sees_area, sees_silence
from contract.catalog import DeviceInfo

router = APIRouter(include_in_schema=False)


def silence_sentence(silence: Silence, names: Names, tz: tzinfo) -> str:
    """A silence as a sentence: who silenced what (devices and rules by name, places by name) until
    when, and why."""
    words, m = names.words, silence.matchers
    community = m.community or ""
    what = []
    if m.rule:
        what.append(words["sil_rule"].format(rule=names.rule(m.rule)))
    if m.category:
        what.append(names.category(m.category))
    if m.device:
        what.append(words["sil_device"].format(device=names.device(m.device, community)))
    if m.gateway:
        what.append(words["ev_gateway"].format(name=names.gateway(m.gateway, m.community)))
    if m.grid:
        what.append(words["sil_grid"].format(grid=names.grid(m.grid, m.community)))
    if not what:
        what.append(words["sil_everything"])
    # A device names its place already; anything else is bounded by its community.
    where = words["sil_in"].format(place=names.community(community)) if community and not m.device else ""
    sentence = words["sil_sentence"].format(
        author=names.person(silence.author),
        what=words["list_sep"].join(what),
        where=where,
        until=silence.ends_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
    )
    return sentence + (words["sil_why"].format(why=silence.comment) if silence.comment else "")


@router.get("/console/alerts", response_class=HTMLResponse, response_model=None)
def alerts_page(
    request: Request, resources: ResourcesDep, user: ConsoleUser, error: str | None = None
) -> Response:
    alerts = live_alerts(resources.db, area_filter(user, resources.policy, Alert.community, Alert.grid))
    names = Names(language(request), resources)
    tz = ZoneInfo(resources.settings.display_timezone)
    silences = [
        (s, silence_sentence(s, names, tz))
        for s in SilenceStore(resources.db).current()
        if sees_silence(user, resources.policy, s.matchers.community)
    ]
    return page(
        request,
        resources,
        "alerts.html",
        user=user,
        alerts=alerts,
        silences=silences,
        may_silence=may_manage_silences(user),
        # The alert's subject is a device of the alert's community, or a gateway or grid (no page).
        device_pages={
            a.fingerprint: device_url(a.community, a.subject)
            for a in alerts
            if resources.catalog.device_in(a.community, a.subject) is not None
        },
        rules=[(r.id, names.rule(r.id)) for r in resources.rules],
        communities=sorted(
            (c.id, c.name)
            for c in resources.catalog.communities.values()
            if sees_area(user, resources.policy, c.id)
        ),
        error=error,
    )


class SilenceRefused(ValueError):
    """The user may not silence alerts of that place."""


class AmbiguousDevice(ValueError):
    """The device id is used in more than one of the user's communities and none was chosen."""


def silenced_device(resources: Resources, user: User, community: str, device: str) -> DeviceInfo | None:
    """The device a silence names: in the chosen community, or the only one of that id the user sees."""
    if community:
        return resources.catalog.device_in(community, device)
    mine = [
        info
        for info in resources.catalog.devices()
        if info.device.id == device and sees_area(user, resources.policy, info.community.id, info.device.grid)
    ]
    if len(mine) > 1:
        raise AmbiguousDevice(device)
    return mine[0] if mine else None


@router.post("/console/silences", response_model=None)
def add_silence(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form()],
    device: Annotated[str, Form()] = "",
    community: Annotated[str, Form(max_length=64)] = "",
    rule: Annotated[str, Form()] = "",
    hours: Annotated[float, Form(gt=0, le=24 * 30)] = 2.0,
    comment: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    check_csrf(request, csrf)
    request.state.actor = user.username
    try:
        info = silenced_device(resources, user, community, device) if device else None
        scope = info.community.id if info else (community or None)
        if not may_silence(user, resources.policy, scope):
            raise SilenceRefused(
                "a district operator, or a town operator for a device of the town, sets silences"
            )
        matchers = Matchers(device=device or None, rule=rule or None, community=scope)
        silence = SilenceIn(
            matchers=matchers, ends_at=datetime.now(UTC) + timedelta(hours=hours), comment=comment
        )
    except AmbiguousDevice:
        words = catalogue(language(request))["t"]
        return alerts_page(request, resources, user, error=words["dev_name_the_community"])
    except (ValueError, ValidationError) as err:
        # The reason in the user's words: who may silence what, or what the form lacks.
        words = catalogue(language(request))["t"]
        refused = isinstance(err, SilenceRefused)
        return alerts_page(
            request, resources, user, error=words["sil_refused" if refused else "sil_incomplete"]
        )
    SilenceStore(resources.db).add(silence, author=user.username)
    return RedirectResponse("/console/alerts", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/console/silences/{silence_id}/expire", response_model=None)
def expire_silence(
    silence_id: RowId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form()],
) -> Response:
    check_csrf(request, csrf)
    request.state.actor = user.username
    store = SilenceStore(resources.db)
    silence = store.get(silence_id)
    if silence is not None and may_silence(user, resources.policy, silence.matchers.community):
        store.expire(silence_id)
    return RedirectResponse("/console/alerts", status_code=status.HTTP_303_SEE_OTHER)
