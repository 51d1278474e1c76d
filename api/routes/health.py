"""``GET /healthz``: one entry per component, 503 when any is down."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from fastapi import APIRouter, Response, status
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ResourcesDep
from api.schemas import ComponentHealth, Health
from common.heartbeat import read_heartbeats
from series.store import StoreError

router = APIRouter(tags=["health"])
SERVICES = ("ingest", "alerts", "cases")


def _database(resources: ResourcesDep) -> ComponentHealth:
    try:
        with resources.db.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as err:
        return ComponentHealth(ok=False, detail=f"unreachable: {type(err).__name__}")
    return ComponentHealth(ok=True, detail=resources.db.dialect.name)


def _series(resources: ResourcesDep) -> ComponentHealth:
    try:
        resources.series.ping()
    except StoreError as err:
        return ComponentHealth(ok=False, detail=f"unreachable: {err}")
    return ComponentHealth(ok=True, detail=type(resources.series).__name__)


def _broker(resources: ResourcesDep) -> ComponentHealth:
    host, port = resources.settings.mqtt_host, resources.settings.mqtt_port
    try:
        with socket.create_connection((host, port), timeout=1.0):
            pass
    except OSError as err:
        return ComponentHealth(ok=False, detail=f"{host}:{port} unreachable: {err.strerror or err}")
    return ComponentHealth(ok=True, detail=f"{host}:{port}")


def _services(resources: ResourcesDep, database_ok: bool) -> dict[str, ComponentHealth]:
    if not database_ok:
        return {s: ComponentHealth(ok=False, detail="unknown: database unreachable") for s in SERVICES}
    beats = read_heartbeats(resources.db)
    now = datetime.now(UTC)
    out = {}
    for service in SERVICES:
        latest = max((b for b in beats if b.service == service), key=lambda b: b.last_seen, default=None)
        if latest is None:
            out[service] = ComponentHealth(ok=False, detail="never seen")
            continue
        age = (now - latest.last_seen).total_seconds()
        alive = age <= resources.settings.heartbeat_stale_s
        out[service] = ComponentHealth(ok=alive, detail=f"last heartbeat {age:.0f}s ago", stats=latest.detail)
    return out


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "A component is down (each one says why)"}},
)
def healthz(resources: ResourcesDep, response: Response) -> Health:
    components = {
        "database": _database(resources),
        "series_store": _series(resources),
        "broker": _broker(resources),
    }
    components |= _services(resources, components["database"].ok)
    health = Health(ok=all(c.ok for c in components.values()), components=components)
    if not health.ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return health
