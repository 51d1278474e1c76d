"""Devices and their telemetry from the time-series store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel

from alerts.fleet import device_last_seen, gateway_states
from api.accounts import User
from api.deps import CurrentUser, ResourcesDep
from api.errors import problem
from api.params import Offset
from api.schemas import FieldOut, Page, Telemetry, TelemetryPoint
from api.scope import sees_area
from contract.catalog import DeviceInfo
from contract.ids import ID_PATTERN
from series.store import Aggregate, StoreError

router = APIRouter(prefix="/api/v1", tags=["devices"])


class DeviceOut(BaseModel):
    device: str
    type: str
    community: str
    gateway: str
    grid: str
    building: str | None
    location: str
    last_seen: datetime | None
    silent: bool  # no report for 3 expected intervals (or never)


class GatewayOut(BaseModel):
    community: str
    gateway: str
    devices: int
    online: bool | None  # None: never heard of
    updated_at: datetime | None
    state: dict[str, Any] | None  # spool depth and drops, 5G signal, camera health as last reported


def visible_devices(resources: ResourcesDep, user: User) -> list[DeviceOut]:
    """The registry of devices in your jurisdiction, with when each last reported."""
    seen = device_last_seen(resources.db)
    now = datetime.now(UTC)
    out = []
    for info in resources.catalog.devices():
        if not sees_area(user, resources.policy, info.community.id, info.device.grid):
            continue
        last = seen.get((info.community.id, info.device.id))
        limit = timedelta(seconds=3 * info.profile.expected_interval_s)
        out.append(
            DeviceOut(
                device=info.device.id,
                type=info.profile.id,
                community=info.community.id,
                gateway=info.gateway.id,
                grid=info.device.grid,
                building=info.device.building,
                location=info.device.location,
                last_seen=last,
                silent=last is None or now - last > limit,
            )
        )
    return out


def visible_gateways(resources: ResourcesDep, user: User) -> list[GatewayOut]:
    """Each gateway's last state: online, spool, 5G signal and cameras."""
    status = gateway_states(resources.db)
    out = []
    for community in resources.catalog.communities.values():
        for gateway in community.gateways:
            # A gateway is yours when any of its devices' grids is (or, empty, when its community is).
            grids: set[str | None] = {d.grid for d in gateway.devices} or {None}
            if not any(sees_area(user, resources.policy, community.id, g) for g in grids):
                continue
            row = status.get((community.id, gateway.id))
            out.append(
                GatewayOut(
                    community=community.id,
                    gateway=gateway.id,
                    devices=len(gateway.devices),
                    online=row.online if row else None,
                    updated_at=row.updated_at if row else None,
                    state=row.state if row else None,
                )
            )
    return out


TimeParam = Annotated[
    datetime | None,
    Query(description="ISO-8601 time (with offset, or UTC when none) or epoch milliseconds."),
]


def _to_ms(value: datetime) -> int:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def visible_device(resources: ResourcesDep, user: User, community: str, device: str) -> DeviceInfo:
    """The device, or 404 when it is unknown or outside the user's jurisdiction (never its data)."""
    info = resources.catalog.device_in(community, device)
    if info is None or not sees_area(user, resources.policy, info.community.id, info.device.grid):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device!r} in community {community!r}")
    return info


def device_by_id(resources: ResourcesDep, user: User, device: str, community: str | None) -> DeviceInfo:
    """A device addressed by id, with its community when given. Without one, the id must name exactly
    one device the user can see: a device id is unique only within a community, and answering with
    whichever community came first would show one community's readings as another's."""
    if community is not None:
        return visible_device(resources, user, community, device)
    mine = [
        info
        for info in resources.catalog.devices()
        if info.device.id == device and sees_area(user, resources.policy, info.community.id, info.device.grid)
    ]
    if not mine:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device!r} not found")
    if len(mine) > 1:
        names = ", ".join(sorted(info.community.id for info in mine))
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"device id {device!r} names devices in communities {names}: name the community, "
            f"with ?community= or as /api/v1/communities/{{community}}/devices/{device}/...",
        )
    return mine[0]


def check_window(since: datetime, until: datetime | None) -> None:
    if until is not None and _to_ms(until) <= _to_ms(since):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "until must be later than since")


# A chart needs hundreds of windows; more than this is a request to make the store work for nothing.
MAX_BUCKETS = 10_000
# What a chart draws well on any screen: a window is chosen so that a span gives at most this many.
CHART_POINTS = 500
# Windows a person reads at a glance, in seconds: from 1 s up to a week.
NICE_WINDOWS_S: tuple[int, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800)
NICE_WINDOWS_S += (21_600, 43_200, 86_400, 172_800, 604_800)
MAX_WINDOW_S = 31 * 86_400


def chart_window_s(span_ms: int, points: int = CHART_POINTS) -> int:
    """The shortest readable window that cuts ``span_ms`` into at most ``points`` windows."""
    for window_s in NICE_WINDOWS_S:
        if -(-span_ms // (window_s * 1000)) <= points:
            return window_s
    return min(MAX_WINDOW_S, -(-span_ms // (points * 1000)))


def check_buckets(since: datetime, until: datetime, window_s: int) -> None:
    """Refuse, before the store is asked, a span that would cut into more than MAX_BUCKETS windows."""
    span_ms = _to_ms(until) - _to_ms(since)
    buckets = -(-span_ms // (window_s * 1000))
    if buckets > MAX_BUCKETS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{buckets:,} windows of {window_s} s from since to until; at most {MAX_BUCKETS:,}: "
            f"widen window_s to at least {-(-span_ms // (MAX_BUCKETS * 1000))} s or shorten the span",
        )


TELEMETRY_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: problem("Unknown device, or not in your jurisdiction"),
    422: problem("Bad parameters, until not after since, or a device id that needs its community"),
    503: problem("Time-series store unavailable"),
}
CommunityId = Annotated[str, Path(pattern=ID_PATTERN)]
CommunityParam = Annotated[
    str | None,
    Query(
        pattern=ID_PATTERN,
        description="The device's community; required when the id names devices in several of yours.",
    ),
]
Limit10k = Annotated[int, Query(ge=1, le=10_000)]


@router.get(
    "/communities/{community}/devices/{device}/telemetry",
    response_model=Telemetry,
    responses=TELEMETRY_RESPONSES,
)
def community_telemetry(
    community: CommunityId,
    device: str,
    resources: ResourcesDep,
    user: CurrentUser,
    since: TimeParam = None,
    until: TimeParam = None,
    limit: Limit10k = 1000,
) -> Telemetry:
    """A device's readings in [since, until) (the last hour by default), oldest first."""
    return read_telemetry(resources, visible_device(resources, user, community, device), since, until, limit)


@router.get("/devices/{device}/telemetry", response_model=Telemetry, responses=TELEMETRY_RESPONSES)
def telemetry(
    device: str,
    resources: ResourcesDep,
    user: CurrentUser,
    community: CommunityParam = None,
    since: TimeParam = None,
    until: TimeParam = None,
    limit: Limit10k = 1000,
) -> Telemetry:
    """As ``/communities/{community}/devices/{device}/telemetry``, the community named or implied."""
    return read_telemetry(resources, device_by_id(resources, user, device, community), since, until, limit)


def read_telemetry(
    resources: ResourcesDep, info: DeviceInfo, since: datetime | None, until: datetime | None, limit: int
) -> Telemetry:
    since = since or datetime.now(UTC) - timedelta(hours=1)
    check_window(since, until)
    try:
        rows = resources.series.query(
            measurement=info.profile.measurement,
            community=info.community.id,
            device=info.device.id,
            since_ms=_to_ms(since),
            until_ms=_to_ms(until) if until else None,
            limit=limit,
        )
    except StoreError as err:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"time-series store unavailable: {err}"
        ) from err
    return Telemetry(
        device=info.device.id,
        type=info.profile.id,
        fields={name: FieldOut(type=spec.type, unit=spec.unit) for name, spec in info.profile.fields.items()},
        since=since,
        until=until,
        points=[
            TelemetryPoint(ts=r.ts_ms, time=datetime.fromtimestamp(r.ts_ms / 1000, UTC), values=r.fields)
            for r in rows
        ],
    )


Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/devices", response_model=Page[DeviceOut])
def list_devices(
    resources: ResourcesDep,
    user: CurrentUser,
    silent: bool | None = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> Page[DeviceOut]:
    """Devices in your jurisdiction with their last report; ``silent=true`` lists the quiet ones."""
    items = [d for d in visible_devices(resources, user) if silent is None or d.silent == silent]
    return Page[DeviceOut](items=items[offset : offset + limit], total=len(items), limit=limit, offset=offset)


@router.get("/gateways", response_model=Page[GatewayOut])
def list_gateways(
    resources: ResourcesDep, user: CurrentUser, limit: Limit = 200, offset: Offset = 0
) -> Page[GatewayOut]:
    """Each gateway's last state: online, spool, 5G signal and cameras."""
    items = visible_gateways(resources, user)
    return Page[GatewayOut](
        items=items[offset : offset + limit], total=len(items), limit=limit, offset=offset
    )


class BucketOut(BaseModel):
    start: datetime
    value: float


class Aggregated(BaseModel):
    community: str
    device: str
    field: str
    fn: Aggregate
    window_s: int
    since: datetime
    until: datetime
    unit: str | None
    buckets: list[BucketOut]


AGGREGATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **TELEMETRY_RESPONSES,
    422: problem(
        "Not a numeric field, bad parameters, until not after since, more than 10,000 windows, "
        "or a device id that needs its community"
    ),
}
WindowParam = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_WINDOW_S,
        description=f"Seconds per window; by default the shortest that gives at most {CHART_POINTS}.",
    ),
]


@router.get(
    "/communities/{community}/devices/{device}/telemetry/aggregate",
    response_model=Aggregated,
    responses=AGGREGATE_RESPONSES,
)
def community_aggregate(
    community: CommunityId,
    device: str,
    resources: ResourcesDep,
    user: CurrentUser,
    field: str,
    fn: Aggregate = "mean",
    window_s: WindowParam = None,
    since: TimeParam = None,
    until: TimeParam = None,
) -> Aggregated:
    """``fn`` of a numeric field per window (empty windows left out), e.g. hourly means for a chart;
    the last day by default."""
    info = visible_device(resources, user, community, device)
    return read_aggregate(resources, info, field, fn, window_s, since, until)


@router.get("/devices/{device}/telemetry/aggregate", response_model=Aggregated, responses=AGGREGATE_RESPONSES)
def aggregate(
    device: str,
    resources: ResourcesDep,
    user: CurrentUser,
    field: str,
    community: CommunityParam = None,
    fn: Aggregate = "mean",
    window_s: WindowParam = None,
    since: TimeParam = None,
    until: TimeParam = None,
) -> Aggregated:
    """As ``/communities/{community}/devices/{device}/telemetry/aggregate``, community named or implied."""
    info = device_by_id(resources, user, device, community)
    return read_aggregate(resources, info, field, fn, window_s, since, until)


def read_aggregate(
    resources: ResourcesDep,
    info: DeviceInfo,
    field: str,
    fn: Aggregate,
    window_s: int | None,
    since: datetime | None,
    until: datetime | None,
) -> Aggregated:
    spec = info.profile.fields.get(field)
    if spec is None or spec.type not in ("float", "int"):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"{field!r} is not a numeric field of {info.profile.id}"
        )
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=1)
    check_window(since, until)
    window_s = window_s or chart_window_s(_to_ms(until) - _to_ms(since))
    check_buckets(since, until, window_s)
    try:
        buckets = resources.series.aggregate(
            measurement=info.profile.measurement,
            community=info.community.id,
            device=info.device.id,
            field=field,
            fn=fn,
            window_ms=window_s * 1000,
            since_ms=_to_ms(since),
            until_ms=_to_ms(until),
        )
    except StoreError as err:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"time-series store unavailable: {err}"
        ) from err
    return Aggregated(
        community=info.community.id,
        device=info.device.id,
        field=field,
        fn=fn,
        window_s=window_s,
        since=since,
        until=until,
        unit=spec.unit,
        buckets=[
            BucketOut(start=datetime.fromtimestamp(b.start_ms / 1000, UTC), value=b.value) for b in buckets
        ],
    )
