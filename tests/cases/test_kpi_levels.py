"""KPIs at every level and for district departments, the period before, the rankings and the 通报 —
each checked against figures computed by hand on a generated month (``tests/cases/kpi_month.py``), on
SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cases.kpi_departments import department_kpis
from cases.kpi_notices import monthly_notices
from cases.kpi_periods import PeriodError, calendar_period, custom_period, month_period
from cases.kpi_rankings import rank_departments, rank_towns
from cases.kpis import Kpis, Level, compute_kpis
from cases.policy import CasePolicy
from tests.api.two_towns import TOWN_A, TOWN_B, make_config
from tests.cases.kpi_month import CST, NOVEMBER, generate_month


@pytest.fixture
def district(tmp_path: Path) -> CasePolicy:
    return CasePolicy.load(make_config(tmp_path / "config"))


@pytest.fixture
def month(db: Engine, district: CasePolicy) -> dict[int, int]:
    return generate_month(db, district)


def test_periods_follow_the_local_calendar() -> None:
    week = calendar_period("week", date(2026, 11, 5), CST)  # a Thursday
    assert (week.start, week.end) == (datetime(2026, 11, 2, tzinfo=CST), datetime(2026, 11, 9, tzinfo=CST))
    assert week.start.astimezone(UTC) == datetime(2026, 11, 1, 16, tzinfo=UTC)  # Shanghai midnight
    quarter = calendar_period("quarter", date(2026, 11, 5), CST)
    assert (quarter.start.month, quarter.end) == (10, datetime(2027, 1, 1, tzinfo=CST))
    assert quarter.previous().start == datetime(2026, 7, 1, tzinfo=CST)
    assert NOVEMBER.previous().start == datetime(2026, 10, 1, tzinfo=CST)
    assert month_period("2026-01", CST).previous().start == datetime(2025, 12, 1, tzinfo=CST)
    day = calendar_period("day", date(2026, 3, 1), CST).previous()
    assert day.start == datetime(2026, 2, 28, tzinfo=CST)
    span = custom_period(datetime(2026, 11, 3, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))
    assert span.previous().start == datetime(2026, 11, 1, tzinfo=UTC)
    for bad in ("2026-13", "2026", "26-01-01", "x"):
        with pytest.raises(PeriodError):
            month_period(bad, CST)
    with pytest.raises(PeriodError):
        custom_period(datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    with pytest.raises(PeriodError):
        custom_period(datetime(2020, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


def _kpis(db: Engine, policy: CasePolicy, level: Level, scope: str, previous: bool = False) -> Kpis:
    period = NOVEMBER.previous() if previous else NOVEMBER
    return compute_kpis(db, policy, level=level, scope=scope, start=period.start, end=period.end)


def test_kpis_at_every_level(db: Engine, district: CasePolicy, month: dict[int, int]) -> None:
    town_a = _kpis(db, district, "town", TOWN_A)
    # 30 cases, one voided: 29 counted, 24 completed, 3 of them late; 21 visits reached, 20 satisfied.
    assert (town_a.all_cases.cases, town_a.all_cases.completed) == (29, 24)
    assert town_a.all_cases.completion_rate == round(24 / 29, 4) == 0.8276
    assert town_a.all_cases.on_time_rate == 0.875
    assert town_a.all_cases.satisfaction_rate == round(20 / 21, 4)
    assert town_a.calls == 4 and town_a.called_cases.on_time_rate == 0.75
    assert town_a.void_rate == round(1 / 30, 4) and town_a.rework_rate == round(1 / 24, 4)
    town_b = _kpis(db, district, "town", TOWN_B)
    assert (town_b.all_cases.cases, town_b.all_cases.on_time_rate, town_b.all_cases.satisfaction_rate) == (
        10,
        0.9,
        None,
    )
    whole = _kpis(db, district, "district", "rencheng")
    assert (whole.all_cases.cases, whole.all_cases.completed) == (39, 34)
    assert whole.all_cases.on_time_rate == round(30 / 34, 4) and whole.calls == 4
    community = _kpis(db, district, "community", "xinhe")
    assert community.all_cases == town_b.all_cases
    grid = _kpis(db, district, "grid", "g-north")  # cases 0, 3, ..., 27: 27 voided, none late
    assert (grid.all_cases.cases, grid.all_cases.completed, grid.all_cases.on_time_rate) == (9, 8, 1.0)
    assert grid.all_cases.completion_rate == round(8 / 9, 4)
    before = _kpis(db, district, "town", TOWN_A, previous=True)  # October: one on time, one late
    assert (before.all_cases.cases, before.all_cases.on_time_rate) == (2, 0.5)
    assert _kpis(db, district, "town", TOWN_B, previous=True).all_cases.cases == 0


def test_department_kpis_from_the_log(db: Engine, district: CasePolicy, month: dict[int, int]) -> None:
    found = department_kpis(db, district, start=NOVEMBER.start, end=NOVEMBER.end)
    enforcement = found["enforcement"]
    # Three calls: resolved on time (rated 5), resolved 19 days later (rated 4), returned (rated 2).
    assert (enforcement.calls, enforcement.completed, enforcement.on_time, enforcement.returned) == (
        3,
        2,
        1,
        1,
    )
    assert enforcement.completion_rate == 0.6667 and enforcement.on_time_rate == 0.5
    assert enforcement.return_rate == 0.3333
    assert enforcement.average_rating == 3.67 and enforcement.rated == 3
    assert enforcement.rating_distribution == {1: 0, 2: 1, 3: 0, 4: 1, 5: 1}
    water = found["water"]
    assert (water.calls, water.completed, water.on_time_rate, water.average_rating) == (1, 1, 1.0, None)
    assert found["housing"].calls == 0 and found["housing"].completion_rate is None
    # A town's calls only: town B called nobody.
    town_b = department_kpis(db, district, start=NOVEMBER.start, end=NOVEMBER.end, communities=["xinhe"])
    assert sum(k.calls for k in town_b.values()) == 0
    october = NOVEMBER.previous()
    assert department_kpis(db, district, start=october.start, end=october.end)["enforcement"].calls == 0


def test_rankings_with_the_period_before(db: Engine, district: CasePolicy, month: dict[int, int]) -> None:
    towns = rank_towns(db, district, NOVEMBER)
    assert [(r.rank, r.unit) for r in towns] == [(1, TOWN_B), (2, TOWN_A)]  # on time 90 % over 87.5 %
    assert towns[1].previous.all_cases.on_time_rate == 0.5  # type: ignore[union-attr]
    assert towns[0].previous.all_cases.cases == 0  # type: ignore[union-attr]
    departments = rank_departments(db, district, NOVEMBER)
    assert [r.unit for r in departments] == ["water", "enforcement", "bigdata", "emergency", "housing"]
    assert departments[1].previous.calls == 0


def test_the_months_notice(db: Engine, district: CasePolicy, month: dict[int, int]) -> None:
    notices = monthly_notices(db, start=NOVEMBER.start, end=NOVEMBER.end)
    by_unit = {n.unit: n for n in notices}
    assert [n.unit for n in notices] == [TOWN_A, "enforcement"]  # three cases noticed, then two
    yuehe, enforcement = by_unit[TOWN_A], by_unit["enforcement"]
    assert [c.case_id for c in yuehe.overdue] == [month[7], month[11]]
    assert (yuehe.orders, yuehe.escalated) == (3, 1)
    assert [c.case_id for c in yuehe.returned] == [month[5]]
    assert [c.case_id for c in enforcement.overdue] == [month[1]]
    assert [c.case_id for c in enforcement.returned] == [month[2]]
    assert (enforcement.orders, enforcement.escalated) == (1, 0)
    assert monthly_notices(db, start=NOVEMBER.start, end=NOVEMBER.end, communities=["xinhe"]) == []
    middle = monthly_notices(db, start=NOVEMBER.start, end=NOVEMBER.end, grid="g-middle")  # 1, 4, 7, ...
    assert [(n.unit, [c.case_id for c in n.overdue], n.returned) for n in middle] == [
        ("enforcement", [month[1]], ()),
        (TOWN_A, [month[7]], ()),
    ]
