"""KPIs per district, town, community, grid or district department over a day, week, month, quarter or
custom span, beside the period before; and units ranked side by side (the organisation itself:
``api.routes.organisation``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, status

from api.accounts import User
from api.deps import CurrentUser, Resources, ResourcesDep
from api.errors import problem
from api.params import in_utc_range
from api.scope import may_compare_units, may_see_department_kpis, may_see_kpis
from cases.kpi_departments import department_kpis
from cases.kpi_periods import Period, PeriodError, PeriodKind, calendar_period, custom_period
from cases.kpi_rankings import rank_departments, rank_towns
from cases.kpis import Level, compute_kpis

router = APIRouter(prefix="/api/v1", tags=["kpis"])
KpiLevel = Literal["district", "town", "community", "grid", "department"]
# A calendar anchor whose period (and the one before) stays a date in every time zone.
FIRST_DAY, LAST_DAY = date(1971, 1, 1), date(9998, 12, 31)
KPI_ERRORS: dict[int | str, dict[str, Any]] = {
    403: problem("The scope is outside your jurisdiction"),
    404: problem("No such district, town, community, grid or department"),
    422: problem("Bad parameters: a period without its bounds, start not before end, a time without offset"),
}

Start = Annotated[datetime | None, Query(description="Custom period from (ISO-8601 with offset).")]
End = Annotated[datetime | None, Query(description="... until (exclusive).")]
From = Annotated[datetime | None, Query(alias="from", description="Custom period from (same as start).")]
To = Annotated[datetime | None, Query(alias="to", description="Custom period until (same as end).")]
Anchor = Annotated[
    date | None,
    Query(
        alias="date",
        ge=FIRST_DAY,
        le=LAST_DAY,
        description="A day inside the calendar period (local time of the deployment); default today.",
    ),
]
Kind = Annotated[
    PeriodKind | None,
    Query(
        description="day, week (from Monday), month, quarter, or custom (with from/to); default: "
        "custom when start and end are given, else month."
    ),
]


def display_zone(resources: Resources) -> ZoneInfo:
    return ZoneInfo(resources.settings.display_timezone)


def resolve_period(
    resources: Resources,
    kind: PeriodKind | None,
    anchor: date | None,
    start: datetime | None,
    end: datetime | None,
) -> Period:
    """The period the parameters name; 422 with a sentence when they name none."""
    if kind is None:
        kind = "custom" if start is not None or end is not None else "month"
    try:
        if kind == "custom":
            if start is None or end is None:
                raise PeriodError("a custom period needs start and end (or from and to)")
            period = custom_period(start, end)
        else:
            tz = display_zone(resources)
            period = calendar_period(kind, anchor or datetime.now(tz).date(), tz)
        before = period.previous()
    except (PeriodError, OverflowError) as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    if not in_utc_range(period.start, period.end, before.start):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the period leaves the calendar")
    return period


def resolve_scope(resources: Resources, level: KpiLevel, scope: str | None) -> str:
    """The scope id (the district's when none is given); 404 for one the organisation does not know."""
    org = resources.policy.organisation
    if level == "department":
        if scope is None or org.department(scope) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no department {scope!r}")
        return scope
    scope = scope or org.district.id
    if scope not in known_scopes(resources)[level]:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {level} {scope!r}")
    return scope


def known_scopes(resources: Resources) -> dict[Level, set[str]]:
    org = resources.policy.organisation
    return {
        "district": {org.district.id},
        "town": {t.id for t in org.towns},
        "community": set(resources.catalog.communities),
        "grid": {g.id for c in resources.catalog.communities.values() for g in c.grids},
    }


def check_kpi_access(resources: Resources, user: User, level: KpiLevel, scope: str) -> None:
    if level == "department":
        allowed = may_see_department_kpis(user, scope)
    else:
        allowed = may_see_kpis(user, resources.policy, resources.catalog, level, scope)
    if not allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the {level} {scope!r} is outside your jurisdiction")


def kpi_figures(resources: Resources, level: KpiLevel, scope: str, period: Period) -> dict[str, Any]:
    """One scope's KPIs for a period (or a department's), as a plain dict."""
    if level == "department":
        found = department_kpis(resources.db, resources.policy, start=period.start, end=period.end)
        return found[scope].as_dict()
    kpis = compute_kpis(
        resources.db, resources.policy, level=level, scope=scope, start=period.start, end=period.end
    )
    return kpis.as_dict()


@router.get("/kpis", responses=KPI_ERRORS)
def kpis(
    resources: ResourcesDep,
    user: CurrentUser,
    start: Start = None,
    end: End = None,
    from_: From = None,
    to: To = None,
    level: KpiLevel = "district",
    scope: str | None = None,
    id_: Annotated[str | None, Query(alias="id", description="The unit (same as scope).")] = None,
    period: Kind = None,
    date_: Anchor = None,
) -> dict[str, Any]:
    """Calls, completion, on-time and satisfaction rates (all cases and calls), rework, extensions, voids
    — or a department's calls, completion, on-time, returns and the towns' ratings — with the same
    figures of the period before under ``previous``."""
    chosen = resolve_period(resources, period, date_, from_ or start, to or end)
    unit = resolve_scope(resources, level, scope or id_)
    check_kpi_access(resources, user, level, unit)
    before = chosen.previous()
    return {
        **kpi_figures(resources, level, unit, chosen),
        "period": chosen.kind,
        "previous": kpi_figures(resources, level, unit, before),
    }


@router.get(
    "/kpis/rankings",
    responses={
        403: problem("Units side by side are the district's comparison"),
        422: problem("Bad parameters"),
    },
)
def rankings(
    resources: ResourcesDep,
    user: CurrentUser,
    level: Literal["town", "department"] = "town",
    period: Kind = None,
    date_: Anchor = None,
    from_: From = None,
    to: To = None,
) -> dict[str, Any]:
    """The towns (or the district departments) ranked by on-time completion, then completion, then
    satisfaction (departments: the towns' average rating), each with the period before beside it."""
    chosen = resolve_period(resources, period, date_, from_, to)
    if not may_compare_units(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "units side by side are for district staff")
    ranked = (
        rank_towns(resources.db, resources.policy, chosen)
        if level == "town"
        else rank_departments(resources.db, resources.policy, chosen)
    )
    return {
        "level": level,
        "period": chosen.kind,
        "start": chosen.start.astimezone(UTC),
        "end": chosen.end.astimezone(UTC),
        "units": [r.as_dict() for r in ranked],
    }
