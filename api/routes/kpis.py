"""KPIs and the organisation they are reported for."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from alerts.kpis import Level, compute_kpis
from alerts.organisation import Roster
from alerts.rosters import current_roster, set_roster
from api.accounts import User
from api.deps import CurrentUser, ResourcesDep
from api.scope import DISTRICT_ROLES, sees_area

router = APIRouter(prefix="/api/v1", tags=["kpis"])


@router.get("/kpis")
def kpis(
    resources: ResourcesDep,
    user: CurrentUser,
    start: Annotated[datetime, Query(description="Cases opened from (ISO-8601 with offset).")],
    end: Annotated[datetime, Query(description="... until (exclusive).")],
    level: Level = "district",
    scope: str | None = None,
) -> dict[str, Any]:
    """Calls, completion, on-time and satisfaction rates (all cases and calls), rework, extensions, voids."""
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "start < end, both with a UTC offset")
    org = resources.policy.organisation
    scope = scope or org.district.id
    known = {
        "district": {org.district.id},
        "town": {t.id for t in org.towns},
        "community": set(resources.catalog.communities),
        "grid": {g.id for c in resources.catalog.communities.values() for g in c.grids},
    }[level]
    if scope not in known:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {level} {scope!r}")
    if not _may_see(user, resources, level, scope):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the {level} {scope!r} is outside your jurisdiction")
    return compute_kpis(
        resources.engine, resources.policy, level=level, scope=scope, start=start, end=end
    ).as_dict()


def _may_see(user: User, resources: ResourcesDep, level: Level, scope: str) -> bool:
    if user.role in DISTRICT_ROLES:
        return True
    if level == "town":
        return user.role == "town_operator" and user.town == scope
    if level == "community":
        return sees_area(user, resources.policy, scope)
    if level == "grid":
        community = next(
            (c.id for c in resources.catalog.communities.values() if any(g.id == scope for g in c.grids)), ""
        )
        return sees_area(user, resources.policy, community, scope)
    return False


class RosterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    primary: str
    backup: str
    away: list[str] = Field(default_factory=list)


@router.get("/organisation")
def organisation(resources: ResourcesDep, _user: CurrentUser) -> dict[str, Any]:
    """The organisation from config, with the duty rosters as they stand now (run-time changes included)."""
    org = resources.policy.organisation
    document = org.model_dump()
    units = {r.unit for r in org.rosters} | _roster_units(resources)
    document["rosters"] = [
        r.model_dump() for u in sorted(units) if (r := current_roster(resources.engine, org, u))
    ]
    return document


def _roster_units(resources: ResourcesDep) -> set[str]:
    grids = {g.id for c in resources.catalog.communities.values() for g in c.grids}
    return grids | {d.id for d in resources.policy.organisation.departments}


@router.put(
    "/organisation/rosters/{unit}",
    responses={
        403: {"description": "Not your unit"},
        404: {"description": "No such unit"},
        422: {"description": "Someone on the roster is not among the organisation's people"},
    },
)
def put_roster(unit: str, body: RosterIn, resources: ResourcesDep, user: CurrentUser) -> dict[str, Any]:
    """Change who is on duty for a grid or department (e.g. the primary is on leave: put them in ``away``)."""
    if unit not in _roster_units(resources):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no grid or department {unit!r}")
    grid_community = next(
        (c.id for c in resources.catalog.communities.values() if any(g.id == unit for g in c.grids)), None
    )
    may = user.role in DISTRICT_ROLES or (
        user.role == "town_operator"
        and grid_community is not None
        and sees_area(user, resources.policy, grid_community)
    )
    if not may:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the roster of {unit} is not yours to change")
    roster = Roster(unit=unit, primary=body.primary, backup=body.backup, away=body.away)
    try:
        set_roster(resources.engine, resources.policy.organisation, roster, author=user.username)
    except ValueError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    return roster.model_dump() | {"on_duty": roster.on_duty()}
