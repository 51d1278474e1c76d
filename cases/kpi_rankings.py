"""Units side by side: the towns (or a town's communities, a community's grids) and the district
departments ranked over a period, each with its figures of the period before.

Order: on-time completion first (the seed's headline), then completion, then satisfaction (towns) or
the towns' average rating (departments); a unit without a figure ranks after those with one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine

from cases.kpi_departments import DepartmentKpis, department_kpis
from cases.kpi_periods import Period
from cases.kpis import Kpis, Level, LivedCase, load_lives, summarise
from cases.policy import CasePolicy

RankLevel = Literal["town", "community", "grid", "department"]
CHILD_LEVEL: dict[Level, Level] = {"district": "town", "town": "community", "community": "grid"}


@dataclass(frozen=True)
class Ranked:
    rank: int
    unit: str
    name: str
    current: Kpis | DepartmentKpis
    previous: Kpis | DepartmentKpis

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "unit": self.unit,
            "name": self.name,
            "current": self.current.as_dict(),
            "previous": self.previous.as_dict(),
        }


def _descending(value: float | None) -> tuple[int, float]:
    return (1, 0.0) if value is None else (0, -value)


def _unit_key(kpis: Kpis | DepartmentKpis) -> tuple[Any, ...]:
    if isinstance(kpis, DepartmentKpis):
        return (
            _descending(kpis.on_time_rate),
            _descending(kpis.completion_rate),
            _descending(kpis.average_rating),
            -kpis.calls,
        )
    rates = kpis.all_cases
    return (
        _descending(rates.on_time_rate),
        _descending(rates.completion_rate),
        _descending(rates.satisfaction_rate),
        -rates.cases,
    )


def _ranked(
    rows: list[tuple[str, str, Kpis | DepartmentKpis, Kpis | DepartmentKpis]],
) -> list[Ranked]:
    ordered = sorted(rows, key=lambda row: (_unit_key(row[2]), row[0]))
    return [Ranked(i + 1, unit, name, now, before) for i, (unit, name, now, before) in enumerate(ordered)]


def group_by_child(policy: CasePolicy, child: Level, lived: list[LivedCase]) -> dict[str, list[LivedCase]]:
    groups: dict[str, list[LivedCase]] = defaultdict(list)
    org = policy.organisation
    for case in lived:
        key = {"town": org.town_of(case.community), "community": case.community}.get(child, case.grid)
        groups[key].append(case)
    return groups


def rank_children(
    policy: CasePolicy,
    level: Level,
    scope: str,
    units: list[tuple[str, str]],
    period: Period,
    lived: tuple[list[LivedCase], list[LivedCase]],
) -> list[Ranked]:
    """``units`` (one level below ``scope``) ranked, from the cases of the period and the one before."""
    child = CHILD_LEVEL.get(level)
    if child is None:
        return []
    previous = period.previous()
    now_groups = group_by_child(policy, child, lived[0])
    before_groups = group_by_child(policy, child, lived[1])
    rows: list[tuple[str, str, Kpis | DepartmentKpis, Kpis | DepartmentKpis]] = [
        (
            unit,
            name,
            summarise(child, unit, period.start, period.end, now_groups.get(unit, [])),
            summarise(child, unit, previous.start, previous.end, before_groups.get(unit, [])),
        )
        for unit, name in units
    ]
    return _ranked(rows)


def rank_towns(db: Engine, policy: CasePolicy, period: Period) -> list[Ranked]:
    previous = period.previous()
    lived = (
        load_lives(db, start=period.start, end=period.end),
        load_lives(db, start=previous.start, end=previous.end),
    )
    org = policy.organisation
    towns = [(t.id, t.name) for t in org.towns]
    return rank_children(policy, "district", org.district.id, towns, period, lived)


def rank_departments(
    db: Engine, policy: CasePolicy, period: Period, communities: Collection[str] | None = None
) -> list[Ranked]:
    previous = period.previous()
    now = department_kpis(db, policy, start=period.start, end=period.end, communities=communities)
    before = department_kpis(db, policy, start=previous.start, end=previous.end, communities=communities)
    names = {d.id: d.name for d in policy.organisation.departments}
    rows: list[tuple[str, str, Kpis | DepartmentKpis, Kpis | DepartmentKpis]] = [
        (unit, names.get(unit, unit), kpis, before.get(unit) or _no_calls(unit, previous))
        for unit, kpis in now.items()
    ]
    return _ranked(rows)


def _no_calls(department: str, period: Period) -> DepartmentKpis:
    return DepartmentKpis(
        department,
        period.start,
        period.end,
        0,
        0,
        0,
        0,
        None,
        None,
        None,
        0,
        None,
        dict.fromkeys(range(1, 6), 0),
    )
