"""Agent versions across the fleet: set the version gateways should run (canary first, then a
percentage or all) and see what each runs, its last attempt and the rollouts (#25).

The rows are ``registry.rollout_models``; this router's lifespan runs the publisher that sends each
gateway its desired version retained and stops a rollout when a gateway rolled back
(``registry.version_publisher``). Setting versions is fleet-wide work: district staff or the town
operator of every community involved (``api.scope.may_manage_registry``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from alerts.fleet import gateway_states
from api.deps import CurrentUser, ResourcesDep
from api.errors import problem
from api.scope import may_manage_registry, sees_area
from contract.ids import ID_PATTERN
from registry.rollout_models import AgentRollout, ensure_tables
from registry.rollouts import (
    RolloutError,
    States,
    all_gateways,
    evaluate,
    fleet_versions,
    latest_rollouts,
    resolve_gateways,
    start_canary,
    widen,
)
from registry.version_publisher import DesiredVersionPublisher


def reported_states(db: Any) -> States:
    return {key: row.state for key, row in gateway_states(db).items()}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    resources = app.state.resources
    publisher = DesiredVersionPublisher(
        resources.db, resources.settings, lambda: reported_states(resources.db), poll_s=1.0
    )
    publisher.start()
    yield
    publisher.stop()


router = APIRouter(prefix="/api/v1/fleet", tags=["fleet"], lifespan=lifespan)
Version = Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$", examples=["0.2.0"])]


class UpgradeIn(BaseModel):
    """Exactly one of ``canary``, ``all``, ``percent``: canaries start a rollout, the others widen it."""

    version: Version
    canary: list[Annotated[str, Field(max_length=129)]] = Field(default=[], max_length=20)
    all: bool = False
    percent: int | None = Field(default=None, ge=1, le=100)
    community: str | None = Field(default=None, pattern=ID_PATTERN, description="Only this community.")

    @model_validator(mode="after")
    def _one_way(self) -> UpgradeIn:
        if sum((bool(self.canary), self.all, self.percent is not None)) != 1:
            raise ValueError("give exactly one of canary, all, percent")
        return self


class RolloutOut(BaseModel):
    id: int
    version: str
    canaries: list[str]
    percent: int
    status: str = Field(description="canary, rolling, done, stopped or superseded")
    stopped_reason: str | None
    created_by: str
    created_at: datetime


class GatewayVersionOut(BaseModel):
    community: str
    gateway: str
    online: bool | None
    running: str | None = Field(description="The agent version the gateway last reported.")
    desired: str | None
    rollout_id: int | None
    attempt: str | None = Field(description="The version of its last upgrade attempt.")
    outcome: str | None
    reason: str | None
    phase: str = Field(description="unmanaged, current, pending, upgrading, rolled_back or failed")


class FleetVersionsOut(BaseModel):
    rollouts: list[RolloutOut]
    gateways: list[GatewayVersionOut]


class UpgradeOut(BaseModel):
    rollout: RolloutOut
    told: int = Field(description="Gateways newly told to run the version.")


def rollout_out(r: AgentRollout) -> RolloutOut:
    return RolloutOut(
        id=r.id,
        version=r.version,
        canaries=[f"{c}/{g}" for c, g in r.canaries],
        percent=r.percent,
        status=r.status,
        stopped_reason=r.stopped_reason,
        created_by=r.created_by,
        created_at=r.created_at,
    )


@router.get("/versions", response_model=FleetVersionsOut)
def fleet_versions_route(resources: ResourcesDep, user: CurrentUser) -> FleetVersionsOut:
    """Each gateway you see: the version it runs and should run, its last attempt; the latest rollouts."""
    ensure_tables(resources.db)
    rows = gateway_states(resources.db)
    states = {k: r.state for k, r in rows.items()}
    with Session(resources.db) as session, session.begin():
        evaluate(session, states)  # a canary that rolled back stops its rollout before it is shown
        gateways = fleet_versions(session, states, {k: r.online for k, r in rows.items()})
        rollouts = [rollout_out(r) for r in latest_rollouts(session)]
    visible = [
        GatewayVersionOut(**_fields(g)) for g in gateways if sees_area(user, resources.policy, g.community)
    ]
    return FleetVersionsOut(rollouts=rollouts, gateways=visible)


def _fields(g: Any) -> dict[str, Any]:
    return {name: getattr(g, name) for name in GatewayVersionOut.model_fields}


@router.post(
    "/upgrade",
    response_model=UpgradeOut,
    responses={
        403: problem("Not allowed to manage a community involved"),
        409: problem("The rollout cannot go on as asked (canary not there yet, stopped, unknown gateway)"),
    },
)
def fleet_upgrade(body: UpgradeIn, resources: ResourcesDep, user: CurrentUser) -> UpgradeOut:
    """Start a rollout on canaries, or widen it to a percentage or all once every canary runs it."""
    ensure_tables(resources.db)
    states = reported_states(resources.db)
    with Session(resources.db) as session, session.begin():
        evaluate(session, states)  # kept even when the request below is refused
    try:
        with Session(resources.db) as session, session.begin():
            if body.canary:
                keys = resolve_gateways(session, body.canary)
            else:
                keys = all_gateways(session, body.community)
            denied = sorted({c for c, _ in keys if not may_manage_registry(user, resources.policy, c)})
            if denied:
                raise HTTPException(status.HTTP_403_FORBIDDEN, f"not yours to upgrade: {', '.join(denied)}")
            if body.canary:
                rollout = start_canary(session, body.version, body.canary, user.username)
                told = len(keys)
            else:
                percent = None if body.all else body.percent
                rollout, told = widen(session, body.version, states, percent, body.community)
            out = UpgradeOut(rollout=rollout_out(rollout), told=told)
    except RolloutError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    return out
