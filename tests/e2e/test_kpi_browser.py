"""The KPI page in a real headless Chromium (Debian's), on SQLite and on PostgreSQL: an operator picks a
week, then a month, then the period before — the URL and the trend chart's axis labels follow — and
drills down from a figure to the very cases behind it; on a phone the page reads without scrolling
sideways."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from cases.actions import CaseFlow, Report
from cases.policy import CasePolicy
from common.db import make_engine
from tests.e2e import browser as chromium
from tests.e2e.test_console_browser import console, shoot  # noqa: F401 - the real API
from tests.platform import CONFIG_DIR

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
CST = ZoneInfo("Asia/Shanghai")


def _report_earlier(database_url: str, moments: list[datetime]) -> None:
    db = make_engine(database_url)
    flow = CaseFlow(db, CasePolicy.load(CONFIG_DIR))
    for moment, grid in zip(moments, ("g-south", "g-middle"), strict=False):  # apart: no merging
        place = Report("zhuganxiang", grid, "fire_lane_blocked", "消防通道占用", "3号楼 消防通道")
        _case, merged = flow.report(place, actor="resident", now=moment)
        assert merged is None
    db.dispose()


def _sign_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/console/login?lang=zh")
    chromium.sign_in(page, username, password)
    page.wait_for_url(lambda url: "/console/login" not in url)


def _x_labels(page: Page) -> list[str]:
    return [t or "" for t in page.locator("#trend-cases .x-label").all_text_contents()]  # SVG: no innerText


def _query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def _week_label(day: date) -> str:
    monday = day - timedelta(days=day.weekday())
    return f"{monday:%m/%d}–{monday + timedelta(days=6):%m/%d}"


def test_an_operator_changes_the_period_and_drills_down_to_the_cases(
    browser: Browser,
    console: tuple[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    base, database_url = console
    now = datetime.now(UTC)
    # Besides the fixture's flood of now: two cases reported one and two weeks ago (three in town yuehe).
    _report_earlier(database_url, [now - timedelta(days=7), now - timedelta(days=14)])
    today = now.astimezone(CST).date()
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    _sign_in(page, base, "wang.wei", "s3cret-pass")
    page.goto(f"{base}/console/kpis")
    expect(page.locator("h2")).to_have_text("考核指标")

    # A week: the URL says so, and the chart shows the eight weeks up to this one, labelled by dates.
    page.select_option("#kpi-period", "week")
    page.fill("#kpi-date", today.isoformat())
    page.click("#kpi-show")
    page.wait_for_url(lambda url: "period=week" in url)
    assert _query(page)["date"] == [today.isoformat()]
    labels = _x_labels(page)
    assert len(labels) == 8 and labels[-1] == _week_label(today), labels
    assert labels[0] == _week_label(today - timedelta(weeks=7))
    week_no = page.locator("#trend-cases .x-sub").last.text_content()
    assert week_no == f"第{today.isocalendar().week}周"
    # Each point's value is on the chart: this week's one case.
    expect(page.locator("#trend-cases .series-1 .value").last).to_have_text("1")
    town = page.locator(".kpi-report[data-scope=yuehe]")
    expect(town.locator("[data-kpi=cases]")).to_have_text("1")
    expect(town.locator("[data-previous=cases]")).to_have_text("1")  # last week's flood
    shoot(page, tmp_path, "kpis-week")

    # The week before, from the link: the URL and the labels move back one week.
    page.click("#kpi-before")
    page.wait_for_url(lambda url: f"date={(today - timedelta(days=today.weekday() + 7)).isoformat()}" in url)
    assert _x_labels(page)[-1] == _week_label(today - timedelta(weeks=1))

    # A month: the weeks of the month from its first day.
    page.select_option("#kpi-period", "month")
    page.fill("#kpi-date", today.isoformat())
    page.click("#kpi-show")
    page.wait_for_url(lambda url: "period=month" in url)
    first = today.replace(day=1)
    month_labels = _x_labels(page)
    assert month_labels[0] == f"{first:%m/%d}–{first + timedelta(days=6):%m/%d}", month_labels
    assert month_labels != labels

    # Drill down: the month's cases of the town, the very rows behind the figure.
    town = page.locator(".kpi-report[data-scope=yuehe]")
    figure = town.locator("[data-kpi=cases]").inner_text()
    link = town.locator("a[data-drill=cases]")
    expect(link).to_contain_text(f"{figure} 件")
    link.click()
    page.wait_for_url(lambda url: "/console/kpis/cases" in url)
    query = _query(page)
    assert query["figure"] == ["cases"] and query["level"] == ["town"] and query["scope"] == ["yuehe"]
    assert query["period"] == ["month"]
    rows = page.locator("#kpi-cases tbody tr")
    expect(rows).to_have_count(int(figure))
    expect(page.locator("#kpi-total")).to_have_attribute("data-total", figure)
    expect(rows.first).to_contain_text("积水")
    expect(rows.first).not_to_contain_text("g-north")
    expect(rows.first.locator(".outcome")).to_have_text("未办结")
    expect(page.locator("#state-legend")).to_contain_text("已超时")
    shoot(page, tmp_path, "kpis-drill")
    # Back to the figures with the same period.
    page.click("#kpi-back")
    page.wait_for_url(lambda url: "/console/kpis?" in url and "period=month" in url)
    context.close()


def test_the_kpi_page_reads_on_a_phone(
    browser: Browser,
    console: tuple[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    base, _ = console
    context = chromium.phone(browser)
    page = context.new_page()
    _sign_in(page, base, "li.na", "grid-pass")  # a grid worker: the grid's figures
    page.goto(f"{base}/console/kpis?period=week")
    expect(page.locator(".kpi-report[data-level=grid] h3")).to_contain_text("北区网格")
    expect(page.locator("#trend-cases")).to_be_visible()
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 360, wide
    shoot(page, tmp_path, "kpis-phone")
    context.close()
