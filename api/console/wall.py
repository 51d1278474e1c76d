"""The command-centre wall: the district, or one town, at a glance on a big screen (#24).

``/console/wall`` is the page (the district for district staff, their own town for a town operator;
``?town=`` picks a town); ``/console/wall/figures.json`` and ``/console/wall/map.geojson`` are what its
script draws and redraws in place whenever the console's live stream (``/console/stream``) reports a
change in the viewer's jurisdiction, and once a minute for the devices' health. Outside the viewer's
jurisdiction a town does not exist (404); roles below a town have no wall (403).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from alerts.fleet import DeviceStatus
from alerts.models import Alert
from api.accounts import User, users
from api.console.i18n_wall import WALL_TEXT
from api.console.web import ConsoleUser, language, page
from api.deps import Resources, ResourcesDep
from api.routes.map import community_map, device_health
from api.scope import case_filter, own_wall_town, reads_whole_district, sees_town
from cases.models import Case
from cases.wall_figures import (
    CHANNELS,
    SLA_STATES,
    day_start,
    intake_actors,
    intake_by_channel,
    open_by_category,
    week_trend,
)
from contract.catalog import DeviceState
from contract.ids import ID_PATTERN

router = APIRouter(include_in_schema=False)
TownParam = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)]
DEVICE_STATES = ("online", "silent", "alerting", "maintenance")
# The map's device health, in the wall's words: "unknown" is a device gone silent.
_HEALTH = {"ok": "online", "unknown": "silent", "alerting": "alerting", "maintenance": "maintenance"}
# A wall is read across a room: the categories with the most overdue, up to this many rows.
MAX_CATEGORY_ROWS = 8


@dataclass(frozen=True, slots=True)
class WallScope:
    """The district (town None) or one town, with the communities it covers."""

    town: str | None
    name: str
    communities: list[str]


class NoWall(Exception):
    """The viewer has no wall for what was asked: ``status`` says whether it is absent or forbidden."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason


def wall_scope(resources: Resources, user: User, town: str | None) -> WallScope:
    """The scope asked for, or the viewer's own: the district for district staff, a town operator's town."""
    org = resources.policy.organisation
    if town is None:
        if reads_whole_district(user):
            return WallScope(None, org.district.name, sorted(resources.catalog.communities))
        town = own_wall_town(user)
        if town is None:
            raise NoWall(status.HTTP_403_FORBIDDEN, "wall_forbidden")
    found = next((t for t in org.towns if t.id == town), None)
    if found is None or not (reads_whole_district(user) or sees_town(user, town)):
        raise NoWall(status.HTTP_404_NOT_FOUND, "wall_no_town")
    return WallScope(town, found.name, list(found.communities))


def _jurisdiction(resources: Resources, user: User, scope: WallScope) -> ColumnElement[bool]:
    visible = case_filter(user, resources.policy)
    return visible if scope.town is None else and_(visible, Case.community.in_(scope.communities))


def _device_health(resources: Resources, session: Session, communities: list[str]) -> dict[str, int]:
    """Devices in service per health: the map's judgement, counted over every device of the scope."""
    firing: set[str] = set()
    stopped: set[str] = set()
    for subject, alert_status in session.execute(
        select(Alert.subject, Alert.status).where(
            Alert.community.in_(communities), Alert.status.in_(("firing", "unknown"))
        )
    ):
        (firing if alert_status == "firing" else stopped).add(subject)
    seen = {
        row.device: row.last_seen if row.last_seen.tzinfo else row.last_seen.replace(tzinfo=UTC)
        for row in session.scalars(select(DeviceStatus).where(DeviceStatus.community.in_(communities)))
    }
    counts = dict.fromkeys(DEVICE_STATES, 0)
    now = datetime.now(UTC)
    for community_id in communities:
        community = resources.catalog.communities.get(community_id)
        for gateway in community.gateways if community else ():
            for device in gateway.devices:
                if device.state == DeviceState.RETIRED:
                    continue
                profile = resources.catalog.profiles.get(device.type)
                silent_after = timedelta(seconds=3 * (profile.expected_interval_s if profile else 60.0))
                health = device_health(device, firing, stopped, seen.get(device.id), silent_after, now)
                counts[_HEALTH[health]] += 1
    return counts


def _known_accounts(session: Session, actors: set[str]) -> set[str]:
    if not actors:
        return set()
    return set(session.scalars(select(users.c.username).where(users.c.username.in_(sorted(actors)))))


def wall_figures(resources: Resources, user: User, scope: WallScope, lang: str) -> dict[str, Any]:
    """Everything on the wall but the map, as the page's script draws it (names in ``lang``)."""
    tz = ZoneInfo(resources.settings.display_timezone)
    now = datetime.now(UTC)
    today = now.astimezone(tz).date()
    jurisdiction = _jurisdiction(resources, user, scope)
    zh = lang == "zh"
    with Session(resources.db) as session:
        by_category = open_by_category(session, jurisdiction, now)
        actors = intake_actors(
            session, jurisdiction, (day_start(today, tz), day_start(today + timedelta(days=1), tz))
        )
        accounts = _known_accounts(session, {actor for _, actor, _ in actors})
        trend = week_trend(session, jurisdiction, today, tz)
        devices = _device_health(resources, session, scope.communities)

    def category_name(code: str) -> str:
        found = resources.categories.get(code)
        return code if found is None else (found.name_zh if zh else found.name_en)

    head, rest = by_category[:MAX_CATEGORY_ROWS], by_category[MAX_CATEGORY_ROWS:]
    shown: list[dict[str, Any]] = [
        {"name": category_name(c.category), "counts": c.counts, "total": c.total} for c in head
    ]
    if rest:
        shown.append(
            {
                "name": WALL_TEXT[lang]["wall_other_categories"].replace("{n}", str(len(rest))),
                "counts": {s: sum(c.counts[s] for c in rest) for s in SLA_STATES},
                "total": sum(c.total for c in rest),
            }
        )
    totals = {s: sum(c.counts[s] for c in by_category) for s in SLA_STATES}
    intake = intake_by_channel(actors, accounts.__contains__)
    return {
        "scope": scope.name,
        "updated": now.astimezone(tz).strftime("%H:%M:%S"),
        "open": {"total": sum(totals.values()), "by_sla": totals, "categories": shown},
        "intake": {"total": sum(intake.values()), "channels": intake},
        "devices": {"total": sum(devices.values()), "states": devices},
        "trend": [{"day": d.day.strftime("%m-%d"), "opened": d.opened, "closed": d.closed} for d in trend],
    }


def wall_map(resources: Resources, user: User, scope: WallScope, lang: str) -> dict[str, Any]:
    """The registry's map of every community in scope, cut to what a wall shows: grids, open cases, and
    the devices that need someone (alerting or silent)."""
    features: list[dict[str, Any]] = []
    unplaced, truncated = 0, False
    for community in scope.communities:
        if community not in resources.catalog.communities:
            continue
        collection = community_map(resources, user, community, lang)
        for feature in collection["features"]:
            props = feature["properties"]
            if props["kind"] in ("grid", "case") or props.get("status") in ("alerting", "unknown"):
                features.append(feature)
        unplaced += collection["properties"]["unplaced"]
        truncated = truncated or collection["properties"]["truncated"]
    return {
        "type": "FeatureCollection",
        "features": features,
        "properties": {"unplaced": unplaced, "truncated": truncated},
    }


def _no_wall(request: Request, resources: Resources, user: User, err: NoWall) -> Response:
    response = page(request, resources, "wall.html", user=user, scope=None, reason=err.reason)
    response.status_code = err.status_code
    return response


def _scope_query(scope: WallScope) -> str:
    return f"?town={scope.town}" if scope.town else ""


@router.get("/console/wall", response_class=HTMLResponse, response_model=None)
def wall_page(
    request: Request, resources: ResourcesDep, user: ConsoleUser, town: TownParam = None
) -> Response:
    try:
        scope = wall_scope(resources, user, town)
    except NoWall as err:
        return _no_wall(request, resources, user, err)
    lang = language(request)
    org = resources.policy.organisation
    towns = [(t.id, t.name) for t in org.towns] if reads_whole_district(user) else []
    query = _scope_query(scope)
    return page(
        request,
        resources,
        "wall.html",
        user=user,
        scope=scope,
        towns=towns,
        district_name=org.district.name,
        figures_url=f"/console/wall/figures.json{query}",
        map_url=f"/console/wall/map.geojson{query}",
        figures=json.dumps(wall_figures(resources, user, scope, lang), ensure_ascii=False),
        wall_words=json.dumps(WALL_TEXT[lang], ensure_ascii=False),
        sla_states=SLA_STATES,
        channels=CHANNELS,
        device_states=DEVICE_STATES,
    )


def _json_or_problem(resources: Resources, user: User, town: str | None, lang: str, kind: str) -> Response:
    try:
        scope = wall_scope(resources, user, town)
    except NoWall as err:
        return JSONResponse({"detail": WALL_TEXT[lang][err.reason]}, status_code=err.status_code)
    build = wall_figures if kind == "figures" else wall_map
    return JSONResponse(build(resources, user, scope, lang))


@router.get("/console/wall/figures.json", response_model=None)
def wall_figures_json(
    request: Request, resources: ResourcesDep, user: ConsoleUser, town: TownParam = None
) -> Response:
    return _json_or_problem(resources, user, town, language(request), "figures")


@router.get("/console/wall/map.geojson", response_model=None)
def wall_map_json(
    request: Request, resources: ResourcesDep, user: ConsoleUser, town: TownParam = None
) -> Response:
    return _json_or_problem(resources, user, town, language(request), "map")
