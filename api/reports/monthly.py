"""The monthly report of a scope, gathered from the event log: its KPIs beside last month's, its units
and the departments ranked, the weekly trend, and the month's 通报 (overdue and returned cases by unit).

The month's cases are read once and every grouping is summarised from them: a district month of
10^4 cases is read in one pass, not once per town and week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from api.console.charts import Chart, line_chart
from api.deps import Resources
from cases.kpi_notices import UnitNotice, monthly_notices
from cases.kpi_periods import Period, weeks_of
from cases.kpi_rankings import CHILD_LEVEL, Ranked, rank_children, rank_departments
from cases.kpis import Kpis, Level, LivedCase, load_lives, scope_communities, summarise


@dataclass(frozen=True)
class Trend:
    weeks: list[tuple[datetime, Kpis]]
    cases: Chart | None
    on_time: Chart | None


@dataclass(frozen=True)
class MonthlyReport:
    level: Level
    scope: str
    scope_name: str
    month: str
    period: Period
    previous: Period
    kpis: Kpis
    kpis_before: Kpis
    units: list[Ranked]  # one level below the scope
    unit_level: Level | None
    departments: list[Ranked]
    trend: Trend
    notices: list[UnitNotice]
    unit_names: dict[str, str]
    generated_at: datetime


def unit_names(resources: Resources) -> dict[str, str]:
    """Every unit's name by id: the district, towns, communities, grids and departments."""
    org = resources.policy.organisation
    names = {org.district.id: org.district.name}
    names |= {t.id: t.name for t in org.towns}
    names |= {d.id: d.name for d in org.departments}
    for community in resources.catalog.communities.values():
        names[community.id] = community.name
        names |= {g.id: g.name for g in community.grids}
    return names


def _units(resources: Resources, level: Level, scope: str, names: dict[str, str]) -> list[tuple[str, str]]:
    org = resources.policy.organisation
    if level == "district":
        ids = [t.id for t in org.towns]
    elif level == "town":
        ids = [c for t in org.towns if t.id == scope for c in t.communities]
    elif level == "community":
        found = resources.catalog.communities.get(scope)
        ids = [g.id for g in found.grids] if found is not None else []
    else:
        ids = []
    return [(unit, names.get(unit, unit)) for unit in ids]


def _trend(
    level: Level, scope: str, period: Period, lived: list[LivedCase], labels: tuple[str, str]
) -> Trend:
    weeks = [
        (a, summarise(level, scope, a, b, [c for c in lived if a <= c.opened_at < b]))
        for a, b in weeks_of(period)
    ]
    stamps = [(int(a.timestamp() * 1000), k) for a, k in weeks]
    cases = line_chart([(ts, float(k.all_cases.cases)) for ts, k in stamps], labels[0], "", None)
    on_time = line_chart(
        [(ts, 100 * k.all_cases.on_time_rate) for ts, k in stamps if k.all_cases.on_time_rate is not None],
        labels[1],
        "%",
        None,
    )
    return Trend(weeks, cases, on_time)


def build_report(
    resources: Resources,
    level: Level,
    scope: str,
    month: str,
    period: Period,
    labels: tuple[str, str],
    now: datetime,
) -> MonthlyReport:
    """``labels``: the trend charts' captions (cases per week, on-time rate) in the report's language."""
    policy, db = resources.policy, resources.db
    previous = period.previous()
    communities = scope_communities(policy, level, scope)
    grid = scope if level == "grid" else None
    lived = load_lives(db, start=period.start, end=period.end, communities=communities, grid=grid)
    lived_before = load_lives(db, start=previous.start, end=previous.end, communities=communities, grid=grid)
    names = unit_names(resources)
    units = rank_children(
        policy, level, scope, _units(resources, level, scope, names), period, (lived, lived_before)
    )
    departments = rank_departments(db, policy, period, communities) if level in ("district", "town") else []
    notices = monthly_notices(db, start=period.start, end=period.end, communities=communities, grid=grid)
    return MonthlyReport(
        level=level,
        scope=scope,
        scope_name=names.get(scope, scope),
        month=month,
        period=period,
        previous=previous,
        kpis=summarise(level, scope, period.start, period.end, lived),
        kpis_before=summarise(level, scope, previous.start, previous.end, lived_before),
        units=units,
        unit_level=CHILD_LEVEL.get(level),
        departments=departments,
        trend=_trend(level, scope, period, lived, labels),
        notices=notices,
        unit_names=names,
        generated_at=now,
    )
