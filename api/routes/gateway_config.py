"""A gateway's buses and its desired configuration against the one it reports running.

The registry renders the desired config (``registry.desired``) and the API process publishes it to the
gateway (``registry.config_publisher``); the gateway says in its retained state which hash it applied
and which it refused and why; the alert service keeps that state (``alerts.fleet``). This answers
both side by side, with ``drift`` true while the gateway does not run what the registry wants.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from alerts.fleet import GatewayStatus
from api.accounts import User
from api.deps import CurrentUser, ResourcesDep
from api.errors import problem
from api.scope import may_manage_registry, sees_area
from contract.ids import ID_PATTERN
from registry import editing
from registry.desired import config_drift, render
from registry.editing import RegistryError
from registry.models import RegistryGateway

router = APIRouter(prefix="/api/v1", tags=["registry"])
PathId = Annotated[str, Path(pattern=ID_PATTERN)]


class GatewayConfigOut(BaseModel):
    community: str
    gateway: str
    managed: bool = Field(description="The registry has buses of this gateway; otherwise its own file rules.")
    desired_hash: str | None
    desired_config: dict[str, Any] | None
    applied_hash: str | None = Field(description="What the gateway last said it runs (null: its own file).")
    refused_hash: str | None
    refusal_reason: str | None
    drift: bool = Field(description="The gateway does not say it runs the desired config.")
    refusing: bool = Field(description="The gateway refused the desired config itself: a person must act.")
    online: bool | None = Field(description="Null: the gateway never reported a state.")
    reported_at: datetime | None


class BusIn(BaseModel):
    """A gateway's bus (as in a gateway file); from then on the registry says what the gateway polls."""

    id: str
    kind: Literal["modbus_rtu", "modbus_tcp", "serial_line"]
    port: str | None = Field(default=None, description="Serial device, e.g. /dev/ttyUSB0.")
    host: str | None = Field(default=None, description="Modbus TCP host.")
    tcp_port: int | None = None
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1
    timeout_s: float = 0.5
    retries: int = 1


class BusOut(BusIn):
    community: str
    gateway: str


def _gateway_visible(resources: ResourcesDep, user: User, community: str, gateway: str) -> None:
    with Session(resources.db) as session:
        row = session.get(RegistryGateway, (community, gateway))
    if row is None or not sees_area(user, resources.policy, community):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no gateway {gateway!r} in community {community!r}")


@router.get(
    "/gateways/{community}/{gateway}/config",
    response_model=GatewayConfigOut,
    responses={404: problem("No such gateway in your jurisdiction")},
)
def gateway_config(
    community: PathId, gateway: PathId, resources: ResourcesDep, user: CurrentUser
) -> GatewayConfigOut:
    """Desired configuration (from the registry) against the one the gateway reports, and drift."""
    _gateway_visible(resources, user, community, gateway)
    with Session(resources.db) as session:
        desired = render(session, community, gateway)
        reported = session.get(GatewayStatus, (community, gateway))
    drift = config_drift(desired, reported.state if reported else None)
    return GatewayConfigOut(
        community=community,
        gateway=gateway,
        managed=desired is not None,
        desired_hash=drift.desired,
        desired_config=desired.config if desired else None,
        applied_hash=drift.applied,
        refused_hash=drift.refused,
        refusal_reason=drift.reason,
        drift=drift.drift,
        refusing=drift.refusing,
        online=reported.online if reported else None,
        reported_at=reported.updated_at if reported else None,
    )


@router.post(
    "/gateways/{community}/{gateway}/buses",
    status_code=201,
    response_model=BusOut,
    responses={
        403: problem("Not yours to change"),
        404: problem("No such gateway"),
        422: problem("The field named in the answer is wrong"),
    },
)
def add_bus(
    community: PathId, gateway: PathId, body: BusIn, resources: ResourcesDep, user: CurrentUser
) -> BusOut:
    """Add a bus to a gateway; its devices are then placed on it with ``bus``, ``unit`` and ``poll_s``."""
    if not may_manage_registry(user, resources.policy, community):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"the registry of community {community} is not yours to change"
        )
    try:
        with Session(resources.db, expire_on_commit=False) as session, session.begin():
            editing.add_bus(session, community, gateway, body.model_dump(exclude_none=True))
    except RegistryError as err:
        code = status.HTTP_404_NOT_FOUND if err.missing else status.HTTP_422_UNPROCESSABLE_CONTENT
        raise HTTPException(code, [{"loc": ["body", err.field], "msg": err.message}]) from err
    resources.live.refresh()
    return BusOut(community=community, gateway=gateway, **body.model_dump())
