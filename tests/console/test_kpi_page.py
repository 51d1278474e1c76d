"""The console's KPI page over the generated month in two towns, on SQLite and PostgreSQL: the period
picker in the URL, each figure beside the period before with the change, towns and departments ranked
for the district only, the weekly trend with labelled axes and readable values, and the drill-down whose
list is exactly as long as its figure — inside the user's jurisdiction, bad input named and kept."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.console.i18n_kpi import KPI_PAGE_TEXT
from cases.policy import CasePolicy
from common.db import make_engine
from tests.api.conftest import console_login, towns, towns_api  # noqa: F401 - the two-town app
from tests.api.two_towns import TOWN_A, TOWN_B, Seeded
from tests.cases.kpi_month import CST, LATE, _open, generate_month

ZH, EN = KPI_PAGE_TEXT["zh"], KPI_PAGE_TEXT["en"]
NOVEMBER = {"period": "month", "date": "2026-11-15"}


@pytest.fixture(scope="module")
def month(towns: Seeded) -> dict[int, int]:  # noqa: F811
    db = make_engine(towns.settings.database_url)
    try:
        return generate_month(db, CasePolicy.load(towns.settings.config_dir))
    finally:
        db.dispose()


@pytest.fixture
def client(towns_api: TestClient, month: dict[int, int]) -> Iterator[TestClient]:  # noqa: F811
    yield towns_api
    towns_api.cookies.clear()


def _as(client: TestClient, who: str) -> None:
    client.cookies.clear()
    assert console_login(client, who, "pw-" + who).status_code == 200


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _report(page: str, scope: str) -> str:
    return page.split(f'data-scope="{scope}"', 1)[1].split("</section>", 1)[0]


def _row(section: str, figure: str) -> str:
    return section.split(f'data-figure="{figure}"', 1)[1].split("</tr>", 1)[0]


def _cell(row: str, attribute: str) -> str:
    found = re.search(rf'{attribute}="[^"]*">(.*?)</(?:td|b)>', row, re.S)
    assert found is not None, (attribute, row)
    return _text(found.group(1)).strip()


def test_the_district_reads_each_figure_beside_the_month_before(client: TestClient) -> None:
    _as(client, "admin")
    answer = client.get("/console/kpis", params=NOVEMBER | {"lang": "zh"})
    assert answer.status_code == 200
    page = answer.text
    assert "2026-11-01 至 2026-11-30" in _text(page)
    district = _report(page, "rencheng")
    # 39 cases, 34 completed, 30 on time; 21 reached on the visit, 20 satisfied; 4 calls (by hand).
    on_time = _row(district, "on_time_rate")
    assert _cell(on_time, "data-kpi") == "88.2%" and "30 / 34" in on_time
    # October: two cases in town A, one on time of two: 50 % → +38.2 points, an arrow up.
    assert _cell(on_time, "data-previous") == "50.0%"
    assert "trend-up" in on_time and "+38.2 个百分点" in _text(on_time)
    cases = _row(district, "cases")
    assert (_cell(cases, "data-kpi"), _cell(cases, "data-previous"), _cell(cases, "data-change")) == (
        "39",
        "2",
        "上升 +37",
    )
    assert "95.2%" in _row(district, "satisfaction_rate") and "20 / 21" in _row(district, "satisfaction_rate")
    # Each figure links to its cases, with their count: on time → the 4 late ones.
    link = re.search(r'data-drill="late" href="([^"]+)">([^<]+)<', on_time)
    assert link is not None and link.group(2) == "超时办结 4 件"
    towns_ranked = page.split('id="rank-towns"', 1)[1].split("</table>", 1)[0]
    assert towns_ranked.index(f'data-unit="{TOWN_B}"') < towns_ranked.index(f'data-unit="{TOWN_A}"')
    assert '87.5% <span class="prev">(50.0%)</span>' in towns_ranked
    assert 'id="rank-departments"' in page and 'data-unit="enforcement"' in page
    assert f'data-scope="{TOWN_A}"' in page and f'data-scope="{TOWN_B}"' in page
    main = page.split("<main>", 1)[1]  # no script of its own (the bell's, in the header, is a file)
    assert 'id="state-legend"' in main and "<script" not in main and "style=" not in page


def test_the_drill_down_lists_exactly_the_cases_behind_the_figure(
    client: TestClient, month: dict[int, int]
) -> None:
    _as(client, "admin")
    page = client.get("/console/kpis", params=NOVEMBER | {"lang": "en"}).text
    for scope in ("rencheng", TOWN_A, TOWN_B):
        section = _report(page, scope)
        for drill, count in re.findall(r'data-drill="(\w+)" href="[^"]+">[^<]*?: (\d+)<', section):
            href = re.search(rf'data-drill="{drill}" href="([^"]+)"', section)
            assert href is not None
            listed = client.get(html.unescape(href.group(1)))
            assert listed.status_code == 200, (scope, drill)
            total = re.search(r'data-total="(\d+)"', listed.text)
            assert total is not None and total.group(1) == count, (scope, drill)
            assert listed.text.count("data-case-id=") == min(int(count), 50), (scope, drill)
    late = client.get(
        "/console/kpis/cases", params=NOVEMBER | {"level": "district", "scope": "rencheng", "figure": "late"}
    ).text
    listed_ids = {int(i) for i in re.findall(r'data-case-id="(\d+)"', late)}
    assert listed_ids == {month[i] for i in LATE}
    words = _text(late)
    assert "Completed late · 任城区" in words and "Fire lane blocked" in words
    assert "Late" in words and "fire_lane_blocked" not in late and "g-north" not in words
    assert "1–4 of 4" in words


def test_drill_down_pages_by_fifty(client: TestClient, towns: Seeded) -> None:  # noqa: F811
    # 60 cases opened one June morning (far from the month the other tests read).
    db = make_engine(towns.settings.database_url)
    policy = CasePolicy.load(towns.settings.config_dir)
    june = datetime(2026, 6, 10, 9, 0, tzinfo=CST)
    try:
        opened = [_open(db, policy, "zhuganxiang", "g-south", june + timedelta(minutes=i)) for i in range(60)]
    finally:
        db.dispose()
    _as(client, "admin")
    params = {"period": "month", "date": "2026-06-01", "level": "town", "scope": TOWN_A, "figure": "cases"}
    first = client.get("/console/kpis/cases", params=params | {"lang": "en"}).text
    assert 'data-total="60"' in first and first.count("data-case-id=") == 50
    assert "1–50 of 60" in _text(first) and "Page 1 of 2" in _text(first)
    shown = [int(i) for i in re.findall(r'data-case-id="(\d+)"', first)]
    assert shown == sorted(opened, reverse=True)[:50]  # newest first
    following = re.search(r'href="\?([^"]+)" id="kpi-page-next"', first)
    assert following is not None
    second = client.get("/console/kpis/cases?" + html.unescape(following.group(1))).text
    assert [int(i) for i in re.findall(r'data-case-id="(\d+)"', second)] == sorted(opened, reverse=True)[50:]
    assert "51–60 of 60" in _text(second) and 'id="kpi-page-prev"' in second


def test_the_trend_has_weeks_on_x_values_on_y_and_a_legend(client: TestClient) -> None:
    _as(client, "admin")
    week = client.get("/console/kpis", params={"period": "week", "date": "2026-11-18", "lang": "zh"}).text
    chart = week.split('id="trend-cases"', 1)[1].split("</svg>", 1)[0]
    labels = re.findall(r'class="x-label"[^>]*>([^<]+)<', chart)
    # Eight weeks, Monday to Sunday, up to the chosen one (16–22 November).
    assert len(labels) == 8 and labels[-1] == "11/16–11/22" and labels[0] == "09/28–10/04"
    assert re.findall(r'class="x-sub"[^>]*>([^<]+)<', chart)[-1] == "第47周"
    assert re.findall(r'class="y-label"[^>]*>([^<]+)<', chart)[0] == "0"
    assert 'class="unit"' in chart and ">件<" in chart
    # Each point's value, readable: a label and an accessible title.
    assert "<title>受理 · 11/16–11/22:" in chart
    assert 'class="chart-legend"' in week and "series-2" in week
    rates = week.split('id="trend-rates"', 1)[1].split("</svg>", 1)[0]
    assert re.findall(r'class="y-label"[^>]*>([^<]+)<', rates) == [
        "0.0%",
        "25.0%",
        "50.0%",
        "75.0%",
        "100.0%",
    ]
    english = client.get("/console/kpis", params={"period": "week", "date": "2026-11-18", "lang": "en"}).text
    assert ">W47<" in english and "cases" in english.split('id="trend-cases"', 1)[1].split("</svg>", 1)[0]


def test_a_town_operator_sees_the_town_and_nothing_ranked(client: TestClient) -> None:
    _as(client, "town_operator")
    page = client.get("/console/kpis", params=NOVEMBER).text
    assert f'data-scope="{TOWN_A}"' in page and 'data-scope="rencheng"' not in page
    assert 'id="rank-towns"' not in page and f'data-scope="{TOWN_B}"' not in page
    assert _cell(_row(_report(page, TOWN_A), "on_time_rate"), "data-kpi") == "87.5%"
    mine = client.get(
        "/console/kpis/cases", params=NOVEMBER | {"level": "town", "scope": TOWN_A, "figure": "late"}
    )
    assert mine.status_code == 200 and 'data-total="3"' in mine.text
    theirs = client.get(
        "/console/kpis/cases", params=NOVEMBER | {"level": "town", "scope": TOWN_B, "figure": "late"}
    )
    assert (
        theirs.status_code == 403
        and ZH["kpi_err_forbidden"] in theirs.text
        and "data-case-id" not in theirs.text
    )
    district = client.get("/console/kpis/cases", params=NOVEMBER | {"level": "district", "scope": "rencheng"})
    assert district.status_code == 403


def test_a_grid_worker_reads_the_grid_by_its_name(client: TestClient) -> None:
    _as(client, "grid_worker")
    page = client.get("/console/kpis", params=NOVEMBER | {"lang": "en"}).text
    section = _report(page, "g-north")
    assert "g-north" not in _text(section)  # the grid's name, not its id
    assert _cell(_row(section, "cases"), "data-kpi") == "9"  # cases 0, 3, …, 27 minus the voided 27


def test_bad_input_is_named_and_kept(client: TestClient) -> None:
    _as(client, "admin")
    for params, key in (
        ({"period": "fortnight"}, "kpi_err_kind"),
        ({"period": "week", "date": "18/11/2026"}, "kpi_err_date"),
        ({"period": "custom", "from": "2026-11-01"}, "kpi_err_custom_missing"),
        ({"period": "custom", "from": "2026-11-30", "to": "2026-11-01"}, "kpi_err_custom_order"),
        ({"period": "custom", "from": "2025-01-01", "to": "2026-11-01"}, "kpi_err_custom_long"),
        ({"period": "week", "date": "x" * 41}, "kpi_err_too_long"),
    ):
        answer = client.get("/console/kpis", params=params | {"lang": "en"})
        assert answer.status_code == 422, params
        assert EN[key] in answer.text, params
        if "from" in params:  # what was typed stays in the picker
            assert f'value="{params["from"]}"' in answer.text
    custom = client.get(
        "/console/kpis", params={"period": "custom", "from": "2026-11-01", "to": "2026-11-30"}
    )
    assert custom.status_code == 200 and "88.2%" in custom.text and "from=2026-10-02" in custom.text
    for params, code, key in (
        ({"figure": "bogus"}, 422, "kpi_err_figure"),
        ({"level": "grid", "scope": "nowhere"}, 404, "kpi_err_scope"),
        ({"page": "-1"}, 422, "kpi_err_page"),
        ({"page": "99999999"}, 422, "kpi_err_page"),
    ):
        answer = client.get("/console/kpis/cases", params=NOVEMBER | params | {"lang": "en"})
        assert answer.status_code == code and EN[key] in answer.text, params
