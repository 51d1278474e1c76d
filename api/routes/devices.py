"""Devices and their telemetry from the time-series store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import CurrentUser, ResourcesDep
from api.schemas import FieldOut, Telemetry, TelemetryPoint
from api.scope import sees_area
from ingest.store import StoreError

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])

TimeParam = Annotated[
    datetime | None,
    Query(description="ISO-8601 time (with offset, or UTC when none) or epoch milliseconds."),
]


def _to_ms(value: datetime) -> int:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


@router.get(
    "/{device}/telemetry",
    response_model=Telemetry,
    responses={404: {"description": "Unknown device"}, 503: {"description": "Time-series store unavailable"}},
)
def telemetry(
    device: str,
    resources: ResourcesDep,
    user: CurrentUser,
    since: TimeParam = None,
    until: TimeParam = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Telemetry:
    info = resources.catalog.find_device(device)
    if info is None or not sees_area(user, resources.policy, info.community.id, info.device.grid):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device!r} not found")
    since = since or datetime.now(UTC) - timedelta(hours=1)
    if until is not None and _to_ms(until) <= _to_ms(since):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "until must be later than since")
    try:
        rows = resources.series.query(
            measurement=info.profile.measurement,
            device=device,
            since_ms=_to_ms(since),
            until_ms=_to_ms(until) if until else None,
            limit=limit,
        )
    except StoreError as err:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"time-series store unavailable: {err}"
        ) from err
    return Telemetry(
        device=device,
        type=info.profile.id,
        fields={name: FieldOut(type=spec.type, unit=spec.unit) for name, spec in info.profile.fields.items()},
        since=since,
        until=until,
        points=[
            TelemetryPoint(ts=r.ts_ms, time=datetime.fromtimestamp(r.ts_ms / 1000, UTC), values=r.fields)
            for r in rows
        ],
    )
