"""A community as a map: GeoJSON of its grids and buildings (polygons), devices and open cases (points).

Properties are codes a client can rely on (``status``, ``sla``, ``state``) beside the names people read
(``name``, ``category_name``, ``type_name``, in the language asked for); the console turns the codes into
words from its catalogue. Everything is scoped like the rest of the API: a community outside the
jurisdiction does not exist (404), and a grid worker sees only their grid's places, devices and cases.

A case is drawn where its evidence points: the device that raised it, else the building named in the
evidence, else the middle of its grid. A case that has none of these is counted in ``unplaced``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.fleet import DeviceStatus
from alerts.models import Alert
from api.accounts import User
from api.console.device import device_url
from api.deps import CurrentUser, Resources, ResourcesDep
from api.errors import problem
from api.scope import case_filter, sees_area
from cases.models import OPEN_STATES, Case, CaseState, Evidence
from cases.queue import DUE_SOON
from contract.catalog import Community, Device, DeviceState, Grid
from contract.ids import ID_PATTERN

router = APIRouter(prefix="/api/v1", tags=["map"])

DeviceHealth = Literal["ok", "alerting", "unknown", "maintenance"]
SlaState = Literal["on_time", "due_soon", "overdue", "paused"]
DEVICE_STATUSES: tuple[DeviceHealth, ...] = ("ok", "alerting", "unknown", "maintenance")
SLA_STATES: tuple[SlaState, ...] = ("on_time", "due_soon", "overdue", "paused")
# A map is a picture, not a queue: the newest open cases up to this many; ``truncated`` says when cut.
MAX_CASES = 2000
LANGS = ("zh", "en")
Ring = list[list[float]]
Point = tuple[float, float]  # (lon, lat), as GeoJSON orders them


def centroid(polygon: Sequence[Ring]) -> Point | None:
    """The area centroid of a polygon's outer ring (the mean of its corners for a degenerate one)."""
    ring = polygon[0] if polygon else []
    if len(ring) < 3:
        return None
    area = cx = cy = 0.0
    for (x0, y0), (x1, y1) in pairwise(ring):
        cross = x0 * y1 - x1 * y0
        area += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    if abs(area) < 1e-18:
        corners = ring[:-1] if ring[0] == ring[-1] else ring
        return (sum(p[0] for p in corners) / len(corners), sum(p[1] for p in corners) / len(corners))
    return (cx / (3 * area), cy / (3 * area))


def sla_state(case: Case, now: datetime) -> SlaState:
    """Overdue once the deadline or the running stage's due time has passed; due soon within an hour."""
    if case.state == CaseState.SUSPENDED.value:
        return "paused"
    due = [d if d.tzinfo else d.replace(tzinfo=UTC) for d in (case.deadline, case.stage_due) if d]
    if any(d <= now for d in due):
        return "overdue"
    if any(d <= now + DUE_SOON for d in due):
        return "due_soon"
    return "on_time"


def device_health(
    device: Device,
    firing: set[str],
    data_stopped: set[str],
    last_seen: datetime | None,
    silent_after: timedelta,
    now: datetime,
) -> DeviceHealth:
    """Maintenance first (its alerts are silenced by design), then a firing alert, then silence."""
    if device.state == DeviceState.MAINTENANCE:
        return "maintenance"
    if device.id in firing:
        return "alerting"
    if device.id in data_stopped or last_seen is None or now - last_seen > silent_after:
        return "unknown"
    return "ok"


def visible_community(resources: Resources, user: User, community: str) -> Community:
    """The community, or 404 when it is unknown or outside the user's jurisdiction."""
    found = resources.catalog.communities.get(community)
    if found is None or not sees_area(user, resources.policy, community):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"community {community!r} not found")
    return found


def _polygon(kind: str, id_: str, name: str, grid: str, polygon: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": f"{kind}:{id_}",
        "geometry": {"type": "Polygon", "coordinates": polygon},
        "properties": {"kind": kind, "id": id_, "name": name, "grid": grid},
    }


def _point(kind: str, id_: str, at: Point, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": f"{kind}:{id_}",
        "geometry": {"type": "Point", "coordinates": [round(at[0], 7), round(at[1], 7)]},
        "properties": {"kind": kind, "id": id_, **properties},
    }


def _device_signals(session: Session, community: str) -> tuple[set[str], set[str], dict[str, datetime]]:
    """Devices with a firing alert, devices whose data stopped, and when each last reported."""
    firing: set[str] = set()
    stopped: set[str] = set()
    for subject, alert_status in session.execute(
        select(Alert.subject, Alert.status).where(
            Alert.community == community, Alert.status.in_(("firing", "unknown"))
        )
    ):
        (firing if alert_status == "firing" else stopped).add(subject)
    seen = {
        r.device: (r.last_seen if r.last_seen.tzinfo else r.last_seen.replace(tzinfo=UTC))
        for r in session.scalars(select(DeviceStatus).where(DeviceStatus.community == community))
    }
    return firing, stopped, seen


def _open_cases(session: Session, resources: Resources, user: User, community: str) -> list[Case]:
    query = (
        select(Case)
        .where(
            Case.community == community,
            Case.state.in_([s.value for s in OPEN_STATES]),
            case_filter(user, resources.policy),
        )
        .order_by(Case.opened_at.desc(), Case.id.desc())
        .limit(MAX_CASES + 1)
    )
    return list(session.scalars(query))


def _first_evidence(session: Session, case_ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
    """Each case's first evidence: (device, building)."""
    first: dict[int, tuple[str, str | None]] = {}
    ids = list(case_ids)
    if not ids:
        return first
    rows = session.execute(
        select(Evidence.case_id, Evidence.device, Evidence.building)
        .where(Evidence.case_id.in_(ids))
        .order_by(Evidence.id)
    )
    for case_id, device, building in rows:
        first.setdefault(case_id, (device, building))
    return first


@dataclass
class _Places:
    """Where things can be drawn: each grid's and building's middle, each device's point."""

    grids: dict[str, Point] = field(default_factory=dict)
    buildings: dict[str, Point] = field(default_factory=dict)
    devices: dict[str, Point] = field(default_factory=dict)


def _place_features(community: Community, grids: list[Grid], places: _Places) -> list[dict[str, Any]]:
    """Grids first, then buildings, so a building is drawn over its grid."""
    features: list[dict[str, Any]] = []
    for grid in grids:
        if grid.polygon:
            features.append(_polygon("grid", grid.id, grid.name, grid.id, grid.polygon))
            if (middle := centroid(grid.polygon)) is not None:
                places.grids[grid.id] = middle
    for grid in grids:
        for building in grid.buildings:
            if building.polygon:
                features.append(_polygon("building", building.id, building.name, grid.id, building.polygon))
                if (middle := centroid(building.polygon)) is not None:
                    places.buildings[building.id] = middle
    for gateway in community.gateways:
        for device in gateway.devices:
            if device.lat is not None and device.lon is not None:
                places.devices[device.id] = (device.lon, device.lat)  # a case may point at any of them
    return features


def _device_features(
    resources: Resources,
    community: Community,
    grid_ids: set[str],
    places: _Places,
    signals: tuple[set[str], set[str], dict[str, datetime]],
    zh: bool,
    now: datetime,
) -> tuple[list[dict[str, Any]], int]:
    """The devices in the grids shown (retired ones left out), and how many have no point."""
    firing, stopped, seen = signals
    features: list[dict[str, Any]] = []
    unplaced = 0
    for gateway in community.gateways:
        for device in gateway.devices:
            if device.state == DeviceState.RETIRED or device.grid not in grid_ids:
                continue
            at = places.devices.get(device.id)
            if at is None:
                unplaced += 1
                continue
            profile = resources.catalog.profiles.get(device.type)
            interval = profile.expected_interval_s if profile else 60.0
            health = device_health(
                device, firing, stopped, seen.get(device.id), timedelta(seconds=3 * interval), now
            )
            type_name = ""
            if profile is not None:
                type_name = (profile.name_zh or profile.name) if zh else profile.name
            properties = {
                "name": device.location or device.id,
                "status": health,
                "state": device.state.value,
                "type": device.type,
                "type_name": type_name,
                "grid": device.grid,
                "building": device.building,
                "gateway": gateway.id,
                "url": device_url(community.id, device.id),
            }
            features.append(_point("device", device.id, at, properties))
    return features, unplaced


def _case_features(
    resources: Resources,
    cases: list[Case],
    evidence: dict[int, tuple[str, str | None]],
    places: _Places,
    zh: bool,
    now: datetime,
) -> tuple[list[dict[str, Any]], int]:
    """Each open case at its device, else its building, else its grid; and how many had none."""
    features: list[dict[str, Any]] = []
    unplaced = 0
    for case in cases:
        device, building = evidence.get(case.id, ("", None))
        at = places.devices.get(device) or places.buildings.get(building or "") or places.grids.get(case.grid)
        if at is None:
            unplaced += 1
            continue
        category = resources.categories.get(case.category)
        category_name = case.category
        if category is not None:
            category_name = category.name_zh if zh else category.name_en
        properties = {
            "name": case.title,
            "status": case.state,
            "category": case.category,
            "category_name": category_name,
            "sla": sla_state(case, now),
            "severity": case.severity,
            "grid": case.grid,
            "device": device or None,
            "deadline": case.deadline.isoformat(),
            "url": f"/console/cases/{case.id}",
        }
        features.append(_point("case", str(case.id), at, properties))
    return features, unplaced


def community_map(
    resources: Resources, user: User, community_id: str, lang: str = "zh", now: datetime | None = None
) -> dict[str, Any]:
    """The community's GeoJSON FeatureCollection as ``user`` may see it (404 outside the jurisdiction)."""
    now = now or datetime.now(UTC)
    community = visible_community(resources, user, community_id)
    grids = [g for g in community.grids if sees_area(user, resources.policy, community.id, g.id)]
    places = _Places()
    features = _place_features(community, grids, places)
    with Session(resources.db) as session:
        signals = _device_signals(session, community.id)
        cases = _open_cases(session, resources, user, community.id)
        truncated = len(cases) > MAX_CASES
        cases = cases[:MAX_CASES]
        evidence = _first_evidence(session, (c.id for c in cases))
    zh = lang == "zh"
    devices, unplaced_devices = _device_features(
        resources, community, {g.id for g in grids}, places, signals, zh, now
    )
    case_points, unplaced = _case_features(resources, cases, evidence, places, zh, now)
    return {
        "type": "FeatureCollection",
        "features": features + devices + case_points,
        "properties": {
            "community": community.id,
            "name": community.name,
            "unplaced": unplaced,
            "unplaced_devices": unplaced_devices,
            "truncated": truncated,
        },
    }


Lang = Annotated[Literal["zh", "en"], Query(description="The language of the names: zh (default) or en.")]


@router.get(
    "/communities/{community}/map",
    responses={404: problem("No such community in your jurisdiction")},
    summary="The community as GeoJSON: grids and buildings, devices with their status, open cases",
)
def community_map_route(
    community: Annotated[str, Path(pattern=ID_PATTERN)],
    resources: ResourcesDep,
    user: CurrentUser,
    lang: Lang = "zh",
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection ([longitude, latitude], WGS-84).

    Feature ``properties.kind`` is ``grid`` or ``building`` (polygons), ``device`` (``status``: ok,
    alerting, unknown, maintenance) or ``case`` (``status``: the case state; ``sla``: on_time,
    due_soon, overdue, paused). ``url`` is the console page of the feature. The collection's
    ``properties.unplaced`` counts open cases with no place to draw them.
    """
    return community_map(resources, user, community, lang)
