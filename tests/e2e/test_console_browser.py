"""The operator console in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from api import accounts
from api.settings import ApiSettings
from common.db import make_engine
from tests.factories import open_flooding_cases
from tests.platform import CONFIG_DIR, Service, wait_for
from yiwang.schema import create_all
from yiwang.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def console(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The real API process on the embedded SQLite default, and on a real PostgreSQL."""
    port = free_port()
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path}/yiwang.db"
        create_all(database_url)
    else:
        database_url = request.getfixturevalue("postgres_schema_url")  # migrated, as in production
    settings = ApiSettings(
        database_url=database_url,
        series_url=f"sqlite:///{tmp_path}/series.db",
        config_dir=CONFIG_DIR,
        http_port=port,
    )
    db = make_engine(settings.database_url)
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
    open_flooding_cases(settings.database_url, [datetime.now(UTC)])
    env = {
        "YIWANG_DATABASE_URL": settings.database_url,
        "YIWANG_SERIES_URL": settings.series_url,
        "YIWANG_CONFIG_DIR": str(CONFIG_DIR),
        "YIWANG_HTTP_PORT": str(port),
    }
    api = Service(["api"], env, tmp_path, tmp_path / "api.log").start()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/console/login", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 30, f"the console; log:\n{api.log()}")
    yield base, settings.database_url
    assert api.stop() == 0


def shoot(page: Page, tmp_path: Path, name: str) -> None:
    """Screenshots land in the test's directory, and in $YIWANG_SCREENSHOTS_DIR (docs/screenshots) when set."""
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    if target := os.environ.get("YIWANG_SCREENSHOTS_DIR"):
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def sign_in(browser: Browser, base: str, username: str, password: str) -> Page:
    page = browser.new_context(locale="zh-CN").new_page()
    page.goto(f"{base}/console")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url in (f"{base}/console", f"{base}/console/field"))  # field roles: phone
    return page


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
    console, _ = console
    page = browser.new_page(locale="zh-CN")
    page.goto(f"{console}/console")
    assert page.url.endswith("/console/login")

    page.fill("input[name=username]", "wang.wei")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text() == "用户名或密码错误"

    page.fill("input[name=username]", "wang.wei")
    page.fill("input[name=password]", "s3cret-pass")
    page.click("button[type=submit]")
    page.wait_for_url(f"{console}/console")
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
    page.goto(f"{console}/console")
    assert page.url.endswith("/console/login")
    page.close()
