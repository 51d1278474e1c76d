"""KPIs per district, town, community or grid (the organisation itself: ``api.routes.organisation``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import CurrentUser, ResourcesDep
from api.errors import problem
from api.params import in_utc_range
from api.scope import may_see_kpis
from cases.kpis import Level, compute_kpis

router = APIRouter(prefix="/api/v1", tags=["kpis"])


@router.get(
    "/kpis",
    responses={
        403: problem("The scope is outside your jurisdiction"),
        404: problem("No such district, town, community or grid"),
        422: problem("Bad parameters, or start not before end"),
    },
)
def kpis(
    resources: ResourcesDep,
    user: CurrentUser,
    start: Annotated[datetime, Query(description="Cases opened from (ISO-8601 with offset).")],
    end: Annotated[datetime, Query(description="... until (exclusive).")],
    level: Level = "district",
    scope: str | None = None,
) -> dict[str, Any]:
    """Calls, completion, on-time and satisfaction rates (all cases and calls), rework, extensions, voids."""
    if start.tzinfo is None or end.tzinfo is None or end <= start or not in_utc_range(start, end):
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
    if not may_see_kpis(user, resources.policy, resources.catalog, level, scope):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the {level} {scope!r} is outside your jurisdiction")
    return compute_kpis(
        resources.db, resources.policy, level=level, scope=scope, start=start, end=end
    ).as_dict()
