"""The console's alert pages: what is firing, pending or unknown now (acknowledged with a note or not),
each alert's history per device and rule, and the silences in force with the form that sets them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from alerts.acknowledgements import NOTE_MAX_CHARS, EmptyNote, acknowledge, current_acknowledgements
from alerts.history import HISTORY_LIMIT, alert_transitions
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
from api.scope import (
    area_filter,
    may_acknowledge_alerts,
    may_manage_silences,
    may_silence,
    sees_area,
    sees_silence,
    silence_too_broad,
)
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


DURATIONS = ("1", "4", "24", "168")  # hours: 1 h, 4 h, 1 d, 7 d; or "custom"
MAX_SILENCE_HOURS = 24 * 30
MIN_SILENCE_HOURS = 0.1


def device_choices(resources: Resources, user: User, names: Names) -> list[tuple[str, str]]:
    """The devices a user may name in a silence or a history filter, as (``community/device``, words)."""
    several = len(resources.catalog.communities) > 1
    found = []
    for info in resources.catalog.devices():
        community = info.community.id
        if not sees_area(user, resources.policy, community, info.device.grid):
            continue
        label = names.device(info.device.id, community)
        found.append(
            (f"{community}/{info.device.id}", f"{info.community.name} · {label}" if several else label)
        )
    return sorted(found, key=lambda c: c[1])


def history_url(community: str, subject: str | None = None, rule: str | None = None) -> str:
    """The alert history of one device (``subject``), one rule, or both."""
    query = {"device": f"{community}/{subject}" if subject else None, "rule": rule}
    return "/console/alerts/history?" + urlencode({k: v for k, v in query.items() if v})


@router.get("/console/alerts", response_class=HTMLResponse, response_model=None)
def alerts_page(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    return render_alerts(request, resources, user, done=done)


def render_alerts(
    request: Request,
    resources: Resources,
    user: User,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    done: str | None = None,
) -> HTMLResponse:
    """The alerts page; after a refused form, with the reason and what the user typed."""
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
        acknowledged=current_acknowledgements(resources.db, alerts),
        may_acknowledge=may_acknowledge_alerts(user),
        silences=silences,
        may_silence=may_manage_silences(user),
        # The alert's subject is a device of the alert's community, or a gateway or grid (no page).
        device_pages={
            a.fingerprint: device_url(a.community, a.subject)
            for a in alerts
            if resources.catalog.device_in(a.community, a.subject) is not None
        },
        history_urls={a.fingerprint: history_url(a.community, a.subject, a.rule_id) for a in alerts},
        rules=[(r.id, names.rule(r.id)) for r in resources.rules],
        devices=device_choices(resources, user, names),
        durations=DURATIONS,
        form=form or {},
        done=done if done in ("ack", "silence") else None,
        error=error,
    )


def _refused_page(
    request: Request, resources: Resources, user: User, key: str, code: int, form: dict[str, str]
) -> Response:
    """The alerts page again with the reason in the user's words and what they typed kept."""
    words = catalogue(language(request))["t"]
    response = render_alerts(request, resources, user, error=words[key], form=form)
    response.status_code = code
    return response


@router.post("/console/alerts/acknowledge", response_model=None)
def acknowledge_alert(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form(max_length=128)],
    fingerprint: Annotated[str, Form(max_length=256)],
    note: Annotated[str, Form(max_length=2 * NOTE_MAX_CHARS)] = "",
) -> Response:
    check_csrf(request, csrf)
    request.state.actor = user.username
    kept = {"ack_fingerprint": fingerprint, "ack_note": note}
    if not may_acknowledge_alerts(user):
        return _refused_page(request, resources, user, "alm_ack_refused", status.HTTP_403_FORBIDDEN, kept)
    area = area_filter(user, resources.policy, Alert.community, Alert.grid)
    try:
        done = acknowledge(resources.db, fingerprint, area, actor=user.username, note=note)
    except EmptyNote:
        return _refused_page(request, resources, user, "alm_ack_empty", 422, kept)
    except ValueError:
        return _refused_page(request, resources, user, "alm_ack_too_long", 422, kept)
    if done is None:  # another town's alert does not exist for the user, as its cases do not
        return _refused_page(request, resources, user, "alm_ack_gone", status.HTTP_404_NOT_FOUND, kept)
    return RedirectResponse("/console/alerts?done=ack", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/console/alerts/history", response_class=HTMLResponse, response_model=None)
def alert_history_page(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    device: Annotated[str, Query(max_length=130)] = "",
    rule: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Every transition of the alerts of one device and/or one rule, in the user's jurisdiction."""
    names = Names(language(request), resources)
    community, _, device_id = device.rpartition("/")
    rows = alert_transitions(
        resources.db,
        area_filter(user, resources.policy, Alert.community, Alert.grid),
        community=community or None,
        device=device_id or None,
        rule=rule or None,
    )
    what = [names.device(device_id, community)] if device_id and community else []
    what += [names.rule(rule)] if rule else []
    return page(
        request,
        resources,
        "alert_history.html",
        user=user,
        rows=rows,
        heading=names.words["list_sep"].join(what),
        devices=device_choices(resources, user, names),
        rules=[(r.id, names.rule(r.id)) for r in resources.rules],
        chosen_device=device,
        chosen_rule=rule,
        limit=HISTORY_LIMIT,
        device_pages={
            (r.community, r.subject): device_url(r.community, r.subject)
            for r in rows
            if resources.catalog.device_in(r.community, r.subject) is not None
        },
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


class BadDuration(ValueError):
    """The silence's length is not one offered, or outside 0.1 h to 30 days."""


def silence_hours(duration: str, custom_hours: str) -> float:
    """The hours a silence lasts: a preset of the picker, or the custom length typed (BadDuration)."""
    if duration not in (*DURATIONS, "custom", ""):
        raise BadDuration(duration)
    text = duration if duration in DURATIONS else custom_hours.strip().replace("，", ".").replace(",", ".")
    try:
        hours = float(text)
    except ValueError as err:
        raise BadDuration(text) from err
    if not MIN_SILENCE_HOURS <= hours <= MAX_SILENCE_HOURS:  # NaN fails too
        raise BadDuration(text)
    return hours


def picked_device(resources: Resources, user: User, community: str, device: str) -> DeviceInfo | None:
    """The device of the picker (``community/device``), or a bare number typed with its community."""
    if "/" in device:
        community, _, device = device.partition("/")
    info = silenced_device(resources, user, community, device)
    if info is None or not sees_area(user, resources.policy, info.community.id, info.device.grid):
        raise UnknownDevice(device)
    return info


class UnknownDevice(ValueError):
    """No such device in the user's jurisdiction."""


@router.post("/console/silences", response_model=None)
def add_silence(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form(max_length=128)],
    device: Annotated[str, Form(max_length=130)] = "",
    community: Annotated[str, Form(max_length=64)] = "",
    rule: Annotated[str, Form(max_length=64)] = "",
    duration: Annotated[str, Form(max_length=16)] = "",
    hours: Annotated[str, Form(max_length=16)] = "",
    comment: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    check_csrf(request, csrf)
    request.state.actor = user.username
    kept = {"device": device, "rule": rule, "duration": duration, "hours": hours, "comment": comment}
    try:
        length = silence_hours(duration, hours)
        info = picked_device(resources, user, community, device) if device else None
        scope = info.community.id if info else (community or None)
        if not may_silence(user, resources.policy, scope):
            raise SilenceRefused(
                "a district operator, or a town operator for a device of the town, sets silences"
            )
        matchers = Matchers(device=info.device.id if info else None, rule=rule or None, community=scope)
        if silence_too_broad(user, matchers):
            raise ValueError("a silence below the district names a rule or a device")
        silence = SilenceIn(
            matchers=matchers, ends_at=datetime.now(UTC) + timedelta(hours=length), comment=comment
        )
    except AmbiguousDevice:
        return _refused_page(request, resources, user, "dev_name_the_community", 422, kept)
    except BadDuration:
        return _refused_page(request, resources, user, "alm_bad_duration", 422, kept)
    except UnknownDevice:
        return _refused_page(request, resources, user, "alm_unknown_device", 404, kept)
    except SilenceRefused:
        return _refused_page(request, resources, user, "sil_refused", status.HTTP_403_FORBIDDEN, kept)
    except (ValueError, ValidationError):
        # What the form lacks, in the user's words: a silence names what it silences.
        return _refused_page(request, resources, user, "sil_incomplete", 422, kept)
    SilenceStore(resources.db).add(silence, author=user.username)
    return RedirectResponse("/console/alerts?done=silence", status_code=status.HTTP_303_SEE_OTHER)


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
