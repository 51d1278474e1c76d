"""The operator console in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from api import accounts
from common.db import make_engine
from tests.e2e import browser as chromium
from tests.e2e import conftest as e2e
from tests.factories import open_flooding_cases

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
browser = e2e.browser  # served from here too: tests outside tests/e2e import it with `console`


@pytest.fixture(params=chromium.DATABASES)
def console(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The real API process on the embedded SQLite default, and on a real PostgreSQL."""
    database_url = chromium.fresh_database(request, tmp_path)
    db = make_engine(database_url)
    accounts.create_user(
        db, "wang.wei", "s3cret-pass", role="town_operator", display_name="王伟", town="yuehe"
    )
    accounts.create_user(
        db,
        "li.na",
        "grid-pass",
        role="grid_worker",
        display_name="李娜",
        community="zhuganxiang",
        grid="g-north",
    )
    db.dispose()
    open_flooding_cases(database_url, [datetime.now(UTC)])
    with chromium.api_process(tmp_path, chromium.api_env(database_url, tmp_path)) as api:
        yield api.base, database_url


def shoot(page: Page, tmp_path: Path, name: str) -> None:
    """Screenshots land in the test's directory, and in $YIWANG_SCREENSHOTS_DIR (docs/screenshots) when set."""
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    if target := os.environ.get("YIWANG_SCREENSHOTS_DIR"):
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def sign_in(browser: Browser, base: str, username: str, password: str) -> Page:
    """A new desktop page (in Chinese), signed in."""
    return chromium.signed_in(chromium.desktop(browser), base, username, password)


def act(page: Page, action: str, **fields: str) -> None:
    form = page.locator(f"form[data-action={action}]")
    for name, value in fields.items():
        field = form.locator(f"[name={name}]")
        if field.evaluate("e => e.tagName") == "SELECT":  # a picker (e.g. the unit's people)
            field.select_option(value)
        else:
            field.fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()


def test_a_sensor_case_appears_live_and_is_worked_to_closure_by_the_right_roles(
    browser: Browser, console: tuple[str, str], tmp_path: Path
) -> None:
    base, database_url = console
    town = sign_in(browser, base, "wang.wei", "s3cret-pass")
    assert town.locator("#cases tbody tr").count() == 1
    # A second flood, in another grid, while the page is open: it must appear without a reload.
    open_flooding_cases(database_url, [datetime.now(UTC)], device="wl-03", gateway="gw-02")
    # A function, not an expression string: the console's CSP forbids eval, which a string would need.
    town.wait_for_function("() => document.querySelectorAll('#cases tbody tr').length === 2", timeout=15_000)
    shoot(town, tmp_path, "queue")
    town.locator("#cases tbody tr", has_text="北区网格").locator("a").click()  # li.na's grid
    assert town.locator("#case-state").get_attribute("data-state") == "NEW"
    act(town, "accept")
    act(town, "verify")
    act(town, "assign", assignee="li.na")
    assert town.locator("#case-state").get_attribute("data-state") == "ASSIGNED"
    assert town.locator("form[data-action=sign]").count() == 0  # signing is the grid worker's
    case_url = town.url

    worker = sign_in(browser, base, "li.na", "grid-pass")
    worker.goto(case_url)
    act(worker, "sign")
    act(worker, "feedback", note="已清理积水")
    assert worker.locator("#case-state").get_attribute("data-state") == "FEEDBACK"
    assert worker.locator("form[data-action=pass]").count() == 0

    town.goto(case_url)
    act(town, "check")
    act(town, "pass")
    assert town.locator("#case-state").get_attribute("data-state") == "CLOSED"
    actions = town.locator("#timeline td[data-action]").evaluate_all(
        "cells => cells.map(c => c.dataset.action)"
    )
    assert actions[-7:] == ["accept", "verify", "assign", "sign", "feedback", "check", "pass"]
    shoot(town, tmp_path, "case")
    town.goto(f"{base}/console/kpis")
    town_report = town.locator(".kpi-report[data-scope=yuehe]")
    assert town_report.locator("[data-kpi=completion_rate]").inner_text() == "50.0%"  # 1 of the 2 cases
    assert town.locator("#trend svg").count() >= 1  # weekly trend charts
    shoot(town, tmp_path, "kpis")


def test_operator_logs_in_and_sees_open_cases(
    browser: Browser, console: tuple[str, str], tmp_path: Path
) -> None:
    base, _ = console
    page = browser.new_page(locale="zh-CN")
    page.goto(f"{base}/console")
    assert page.url.endswith("/console/login")

    chromium.sign_in(page, "wang.wei", "wrong")
    assert page.get_by_role("alert").inner_text() == "用户名或密码错误"

    chromium.sign_in(page, "wang.wei", "s3cret-pass")
    page.wait_for_url(f"{base}/console")
    row = page.locator("#cases tbody tr[data-category=flooding]")
    assert row.count() == 1
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "积水内涝：竹竿巷1号院 地下车库入口"
    assert cells[2:5] == ["积水内涝", "北区网格", "待受理"]
    page.screenshot(path=str(tmp_path / "console-zh.png"), full_page=True)

    page.click("text=English")
    assert page.locator("h2").inner_text().startswith("Open cases")
    assert page.locator("#cases tbody td").nth(2).inner_text() == "Flooding"
    assert page.locator("#cases tbody td").nth(4).inner_text() == "New"

    page.click("text=Sign out")
    page.goto(f"{base}/console")
    assert page.url.endswith("/console/login")
    page.close()
