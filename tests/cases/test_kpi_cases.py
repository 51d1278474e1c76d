"""The drill-down from a KPI figure to its cases, over the generated month (``tests/cases/kpi_month.py``):
every list as long as its figure's numerator or denominator, for the district, each town, a community
and a grid, on SQLite and on a real PostgreSQL; the late cases are the ones made late by hand; paging."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cases.kpi_cases import FIGURES, PAGE_SIZE, DrillError, drill_down, in_scope, select_cases
from cases.kpis import Kpis, Level, compute_kpis, load_lives
from cases.policy import CasePolicy
from tests.api.two_towns import TOWN_A, TOWN_B, make_config
from tests.cases.kpi_month import CST, LATE, NOVEMBER, generate_month

SCOPES: list[tuple[Level, str]] = [
    ("district", "rencheng"),
    ("town", TOWN_A),
    ("town", TOWN_B),
    ("community", "zhuganxiang"),
    ("grid", "g-north"),
    ("grid", "xg-middle"),
]


@pytest.fixture
def district(tmp_path: Path) -> CasePolicy:
    return CasePolicy.load(make_config(tmp_path / "config"))


@pytest.fixture
def month(db: Engine, district: CasePolicy) -> dict[int, int]:
    return generate_month(db, district)


def _expected(k: Kpis) -> dict[str, int]:
    """Each drill-down figure as the KPI states it (rates times their denominators)."""
    a = k.all_cases

    def times(rate: float | None, of: int) -> int:
        return 0 if rate is None else round(rate * of)

    on_time = times(a.on_time_rate, a.completed)
    return {
        "cases": a.cases,
        "completed": a.completed,
        "unfinished": a.cases - a.completed,
        "on_time": on_time,
        "late": a.completed - on_time,
        "calls": k.calls,
        "reworked": times(k.rework_rate, a.completed),
        "extended": times(k.extension_rate, a.cases),
    }


def test_every_list_is_as_long_as_its_figure(db: Engine, district: CasePolicy, month: dict[int, int]) -> None:
    district_id = district.organisation.district.id
    seen_late: set[int] = set()
    for level, scope in SCOPES:
        scope = district_id if level == "district" else scope
        kpis = compute_kpis(db, district, level=level, scope=scope, start=NOVEMBER.start, end=NOVEMBER.end)
        for figure, count in _expected(kpis).items():
            drill = drill_down(
                db, district, level=level, scope=scope, start=NOVEMBER.start, end=NOVEMBER.end, figure=figure
            )
            assert drill.total == count, (level, scope, figure)
        visited = drill_down(
            db, district, level=level, scope=scope, start=NOVEMBER.start, end=NOVEMBER.end, figure="visited"
        ).total
        satisfied = drill_down(
            db, district, level=level, scope=scope, start=NOVEMBER.start, end=NOVEMBER.end, figure="satisfied"
        ).total
        if kpis.all_cases.satisfaction_rate is not None:
            assert round(satisfied / visited, 4) == kpis.all_cases.satisfaction_rate, (level, scope)
        if level == "district":
            late = drill_down(
                db, district, level=level, scope=scope, start=NOVEMBER.start, end=NOVEMBER.end, figure="late"
            )
            seen_late = {row.case.id for row in late.rows}
            assert {row.outcome for row in late.rows} == {"late"}
    # The district's late cases are exactly the ones the generator finished 20 days after opening.
    assert seen_late == {month[i] for i in LATE}
    assert (
        drill_down(db, district, level="district", scope=district_id, start=NOVEMBER.start, end=NOVEMBER.end, figure="calls").total
        == 4
    )  # fmt: skip


def test_a_narrower_scope_picked_out_of_a_wider_load_is_the_scope_s_own_load(
    db: Engine, district: CasePolicy, month: dict[int, int]
) -> None:
    everything = load_lives(db, start=NOVEMBER.start, end=NOVEMBER.end)
    for level, scope in SCOPES[1:]:
        picked = {c.id for c in in_scope(district, level, scope, everything)}
        own = compute_kpis(db, district, level=level, scope=scope, start=NOVEMBER.start, end=NOVEMBER.end)
        assert len([i for i in picked if i not in {month[27]}]) == own.all_cases.cases, (level, scope)


def test_rows_carry_title_place_times_and_outcome_newest_first(
    db: Engine, district: CasePolicy, month: dict[int, int]
) -> None:
    drill = drill_down(
        db, district, level="town", scope=TOWN_A, start=NOVEMBER.start, end=NOVEMBER.end, figure="cases"
    )
    assert drill.total == 29 and drill.pages == 1  # 30 cases in town A, one voided
    opened = [row.opened_at for row in drill.rows]
    assert opened == sorted(opened, reverse=True)
    first = drill.rows[-1]
    assert first.case.title == "消防通道占用：3号楼" and first.community == "zhuganxiang"
    assert first.opened_at == datetime(2026, 11, 2, 9, 0, tzinfo=CST)
    assert {row.outcome for row in drill.rows} == {"on_time", "late", "unfinished"}
    done = [row for row in drill.rows if row.outcome == "on_time"]
    assert all(r.completed_at is not None and r.completed_at - r.opened_at < timedelta(days=1) for r in done)


def test_paging_and_refusals(db: Engine, district: CasePolicy, month: dict[int, int]) -> None:
    lived = load_lives(db, start=NOVEMBER.start, end=NOVEMBER.end) * 2  # 78 rows: two pages
    assert len(select_cases("cases", lived)) == 78 > PAGE_SIZE
    with pytest.raises(DrillError, match="unknown figure 'bogus'"):
        select_cases("bogus", lived)
    with pytest.raises(DrillError, match="page must be between"):
        drill_down(db, district, level="district", scope="x", start=NOVEMBER.start, end=NOVEMBER.end, figure="cases", page=0)  # fmt: skip
    past_the_end = drill_down(
        db,
        district,
        level="district",
        scope="x",
        start=NOVEMBER.start,
        end=NOVEMBER.end,
        figure="late",
        page=3,
    )
    assert (past_the_end.total, past_the_end.pages, past_the_end.rows) == (4, 1, [])
    assert set(FIGURES) >= {"cases", "late", "calls", "unsatisfied"}
