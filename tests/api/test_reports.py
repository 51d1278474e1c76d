"""The monthly report over a generated month (``tests/cases/kpi_month.py``) in two towns: HTML in both
languages with the hand-computed figures, the PDF's text (pdftotext) with the same figures, and who may
read which scope's report."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.console.i18n_reports import REPORT_TEXT
from cases.policy import CasePolicy
from common.db import make_engine
from tests.api.conftest import auth
from tests.api.two_towns import TOWN_A, TOWN_B, Seeded
from tests.cases.kpi_month import PHONE, generate_month

MONTH = {"month": "2026-11"}


@pytest.fixture(scope="module")
def month(towns: Seeded) -> dict[int, int]:
    db = make_engine(towns.settings.database_url)
    try:
        return generate_month(db, CasePolicy.load(towns.settings.config_dir))
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def api(towns_api: TestClient, month: dict[int, int]) -> TestClient:
    return towns_api


def _report(api: TestClient, towns: Seeded, who: str, **params: str) -> tuple[int, str]:
    answer = api.get("/api/v1/reports/monthly", params=MONTH | params, headers=auth(towns.tokens[who]))
    return answer.status_code, answer.text


def _figure(html: str, key: str) -> str:
    match = re.search(rf'data-kpi="{key}">([^<]*)<', html)
    assert match is not None, key
    return match.group(1)


def _row(html: str, table: str, unit: str) -> str:
    section = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.sub(r"\s+", " ", section.split(f'data-unit="{unit}"', 1)[1].split("</tr>", 1)[0])


def test_the_district_report_in_chinese(api: TestClient, towns: Seeded, month: dict[int, int]) -> None:
    status, html = _report(api, towns, "admin")
    assert status == 200
    assert "月度考核报告" in html and "任城区" in html and "2026-11" in html
    # 39 cases counted, 34 completed, 30 on time; 21 visits reached, 20 satisfied; 4 calls.
    assert [_figure(html, k) for k in ("cases", "calls", "completion_rate", "on_time_rate")] == [
        "39",
        "4",
        "87.2%",
        "88.2%",
    ]
    assert _figure(html, "satisfaction_rate") == "95.2%"
    units = html.split('id="units"', 1)[1]
    assert units.index(f'data-unit="{TOWN_B}"') < units.index(f'data-unit="{TOWN_A}"')  # 90 % over 87.5 %
    # Town A beside its October (one on time of two).
    assert '87.5% <span class="prev">(50.0%)</span>' in _row(html, "units", TOWN_A)
    enforcement = _row(html, "departments", "enforcement")
    assert "3.67" in enforcement and "66.7%" in enforcement and "50.0%" in enforcement
    assert "2★ 1" in enforcement and "4★ 1" in enforcement and "5★ 1" in enforcement
    notice = _row(html, "notices", TOWN_A)
    assert f"#{month[7]}, #{month[11]}" in notice and f"#{month[5]}" in notice and "越河街道" in notice
    assert f"#{month[1]}" in _row(html, "notices", "enforcement")
    assert "<svg" in html and "<script" not in html
    assert PHONE not in html


def test_the_report_in_english(api: TestClient, towns: Seeded) -> None:
    status, html = _report(api, towns, "supervisor", lang="en")
    assert status == 200
    assert "Monthly performance report" in html and "On-time completion" in html
    assert "Notice: overdue and returned cases" in html and "月度考核报告" not in html
    assert _figure(html, "on_time_rate") == "88.2%"


def test_the_report_answers_with_a_csp_for_its_own_stylesheet(api: TestClient, towns: Seeded) -> None:
    answer = api.get("/api/v1/reports/monthly", params=MONTH, headers=auth(towns.tokens["admin"]))
    style = re.search(r"<style>(.*?)</style>", answer.text, re.DOTALL)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    csp = answer.headers["content-security-policy"]
    assert f"style-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp


def _pdf_text(pdf: bytes) -> str:
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    return done.stdout.decode("utf-8")


@pytest.mark.parametrize(
    ("lang", "words"), [("zh", ("月度考核报告", "越河街道", "区综合行政执法局")), ("en", ("Monthly",))]
)
def test_the_pdf_carries_the_figures(
    api: TestClient, towns: Seeded, month: dict[int, int], lang: str, words: tuple[str, ...]
) -> None:
    answer = api.get(
        "/api/v1/reports/monthly",
        params=MONTH | {"format": "pdf", "lang": lang},
        headers=auth(towns.tokens["admin"]),
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF")
    text = _pdf_text(answer.content)
    for figure in ("88.2%", "87.2%", "95.2%", "3.67", f"#{month[7]}", f"#{month[2]}", *words):
        assert figure in text, figure
    assert PHONE not in text


@pytest.mark.parametrize(
    ("who", "params", "status"),
    [
        ("town_operator", {}, 403),  # the district's report
        ("town_operator", {"scope": TOWN_A}, 200),
        ("town_operator", {"scope": TOWN_B}, 403),
        ("town_b", {"scope": TOWN_B}, 200),
        ("grid_worker", {}, 403),
        ("grid_worker", {"scope": TOWN_A}, 403),
        ("grid_worker", {"scope": "g-north"}, 200),
        ("grid_worker", {"scope": "g-south"}, 403),
        ("department_handler", {}, 403),
        ("admin", {"scope": "nowhere"}, 404),
        ("admin", {"month": "2026-13"}, 422),
        ("admin", {"month": "November"}, 422),
        ("admin", {"month": "0001-01"}, 422),
        ("admin", {"scope": TOWN_A, "level": "grid"}, 404),
    ],
)
def test_who_reads_which_report(
    api: TestClient, towns: Seeded, who: str, params: dict[str, str], status: int
) -> None:
    assert _report(api, towns, who, **params)[0] == status


def test_a_towns_report_is_its_own(api: TestClient, towns: Seeded, month: dict[int, int]) -> None:
    status, html = _report(api, towns, "town_operator", scope=TOWN_A)
    assert status == 200
    assert _figure(html, "cases") == "29" and _figure(html, "on_time_rate") == "87.5%"
    assert 'data-unit="zhuganxiang"' in html and TOWN_B not in html and "新河" not in html
    # The departments as town A called them; its 通报 has its own cases only.
    assert "3.67" in _row(html, "departments", "enforcement")
    status_b, html_b = _report(api, towns, "town_b", scope=TOWN_B)
    assert status_b == 200 and _figure(html_b, "cases") == "10"
    assert f"#{month[7]}" not in html_b and 'id="notices"' not in html_b


# The JSON routes the report is made of: any level and period, the period before, the rankings.


def _kpis(api: TestClient, towns: Seeded, who: str, path: str = "", **params: str) -> Any:
    return api.get(f"/api/v1/kpis{path}", params=params, headers=auth(towns.tokens[who]))


NOVEMBER_MONTH = {"period": "month", "date": "2026-11-20"}


def test_kpis_of_any_level_with_the_period_before(api: TestClient, towns: Seeded) -> None:
    town = _kpis(api, towns, "admin", level="town", id=TOWN_A, **NOVEMBER_MONTH).json()
    assert (town["all_cases"]["cases"], town["all_cases"]["on_time_rate"], town["period"]) == (
        29,
        0.875,
        "month",
    )
    assert (town["previous"]["all_cases"]["cases"], town["previous"]["all_cases"]["on_time_rate"]) == (2, 0.5)
    assert town["start"] == "2026-11-01T00:00:00+08:00"  # the local calendar's month
    grid = _kpis(api, towns, "grid_worker", level="grid", scope="g-north", **NOVEMBER_MONTH).json()
    assert (grid["all_cases"]["cases"], grid["all_cases"]["completed"]) == (9, 8)
    # The week of Monday 2 November: cases 0–6 (at 09:00) and 20–26 (at 10:00), all in town A.
    week = _kpis(
        api, towns, "admin", level="community", scope="zhuganxiang", period="week", date="2026-11-04"
    )
    assert week.json()["all_cases"]["cases"] == 14 and week.json()["previous"]["all_cases"]["cases"] == 0
    custom = _kpis(
        api,
        towns,
        "admin",
        **{"period": "custom", "from": "2026-11-02T00:00:00+08:00", "to": "2026-11-03T00:00:00+08:00"},
    ).json()
    assert (
        custom["all_cases"]["cases"] == 2 and custom["previous"]["end"] == custom["start"]
    )  # cases 0 and 20
    department = _kpis(api, towns, "admin", level="department", id="enforcement", **NOVEMBER_MONTH).json()
    assert (department["calls"], department["average_rating"], department["rating_distribution"]) == (
        3,
        3.67,
        {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1},
    )
    assert department["previous"]["calls"] == 0


def test_units_ranked_side_by_side(api: TestClient, towns: Seeded) -> None:
    towns_ranked = _kpis(api, towns, "supervisor", "/rankings", level="town", **NOVEMBER_MONTH).json()
    assert [(u["rank"], u["unit"]) for u in towns_ranked["units"]] == [(1, TOWN_B), (2, TOWN_A)]
    assert towns_ranked["units"][1]["previous"]["all_cases"]["on_time_rate"] == 0.5
    departments = _kpis(api, towns, "admin", "/rankings", level="department", **NOVEMBER_MONTH).json()
    assert [u["unit"] for u in departments["units"][:2]] == ["water", "enforcement"]
    assert departments["units"][1]["current"]["average_rating"] == 3.67


@pytest.mark.parametrize(
    ("who", "path", "params", "status"),
    [
        ("town_operator", "/rankings", {}, 403),  # towns side by side are the district's comparison
        ("grid_worker", "/rankings", {"level": "department"}, 403),
        ("department_handler", "", {"level": "department", "id": "water"}, 200),
        ("department_handler", "", {"level": "department", "id": "enforcement"}, 403),
        ("town_operator", "", {"level": "department", "id": "water"}, 403),
        ("admin", "", {"level": "department"}, 404),
        ("admin", "", {"period": "custom", "from": "2026-11-02T00:00:00+08:00"}, 422),
        ("admin", "", {"period": "day", "date": "0001-01-01"}, 422),
        (
            "admin",
            "",
            {"period": "custom", "from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            422,
        ),
        ("admin", "", {"period": "fortnight"}, 422),
        ("grid_worker", "", {"level": "grid", "scope": "g-north", "period": "quarter"}, 200),
    ],
)
def test_who_reads_which_kpis(
    api: TestClient, towns: Seeded, who: str, path: str, params: dict[str, str], status: int
) -> None:
    assert _kpis(api, towns, who, path, **params).status_code == status


def test_the_report_speaks_both_languages() -> None:
    assert REPORT_TEXT["zh"].keys() == REPORT_TEXT["en"].keys()
    assert all(REPORT_TEXT[lang][key] for lang in REPORT_TEXT for key in REPORT_TEXT[lang])
