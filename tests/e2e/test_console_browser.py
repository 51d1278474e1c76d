"""The operator console in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from api import accounts
from api.settings import ApiSettings
from tests.factories import open_flooding_cases
from tests.platform import CONFIG_DIR, Service, wait_for
from tests.servers import free_port
from yiwang.common.db import make_engine
from yiwang.schema import create_all

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


@pytest.fixture
def console(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    settings = ApiSettings(
        database_url=f"sqlite:///{tmp_path}/yiwang.db",
        series_url=f"sqlite:///{tmp_path}/series.db",
        config_dir=CONFIG_DIR,
        http_port=port,
    )
    create_all(settings.database_url)
    engine = make_engine(settings.database_url)
    accounts.create_user(
        engine, "wang.wei", "s3cret-pass", role="town_operator", display_name="王伟", town="yuehe"
    )
    engine.dispose()
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
    yield base
    assert api.stop() == 0


def test_operator_logs_in_and_sees_open_cases(browser: Browser, console: str, tmp_path: Path) -> None:
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
