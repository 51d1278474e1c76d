"""Reporting channels in a real headless Chromium (Debian's), driven by Playwright, against the real API
process on SQLite and a real PostgreSQL: the demo district operator makes a channel for a town on a
desktop and reads its key from the one-time panel; the key files a report through Open311 (httpx, as the
hotline's system would); disabling the channel on the page refuses the same key at once. The page fits a
360 px phone in both languages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from api.accounts import DEMO_USERNAME, ensure_demo_operator
from common.db import make_engine
from tests.e2e import browser as chromium
from tests.e2e.browser import DESKTOP
from tests.e2e.conftest import browser  # noqa: F401 - Chromium, one per module

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
REPORT = {
    "service_code": "fire_lane_blocked",
    "address_id": "zhuganxiang/g-north",
    "description": "车辆长期占用消防通道",
}


@pytest.fixture(params=chromium.DATABASES)
def console(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The real API process, and the demo district operator's password (as `yiwang demo` writes it)."""
    database_url = chromium.fresh_database(request, tmp_path)
    db = make_engine(database_url)
    password = ensure_demo_operator(db, tmp_path / "credentials.json")["password"]
    db.dispose()
    with chromium.api_process(tmp_path, chromium.api_env(database_url, tmp_path)) as api:
        yield api.base, password


def report_with(base: str, key: str) -> httpx.Response:
    """A resident's report, as the 12345 hotline's system files it with its channel key."""
    return httpx.post(f"{base}/open311/v2/requests.json", data=REPORT, headers={"X-Api-Key": key}, timeout=10)


def fits_the_screen(page: Page) -> bool:
    """No sideways scrolling: the page is no wider than the window."""
    return bool(page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"))


def test_a_channel_is_made_used_and_disabled_on_the_page(
    browser: Browser,  # noqa: F811 - the fixture imported above
    console: tuple[str, str],
    tmp_path: Path,
) -> None:
    base, password = console
    desk = chromium.desktop(browser, "zh-CN", **DESKTOP)
    page = chromium.signed_in(desk, base, DEMO_USERNAME, password, "zh")
    page.click("#nav-channels")
    page.wait_for_url(f"{base}/console/channels")
    expect(page.locator("main h2").first).to_have_text("群众上报渠道")
    expect(page.locator("#channels")).to_contain_text("还没有上报渠道")

    page.fill("#create-channel input[name=name]", "12345 热线")
    page.select_option("#create-channel select[name=town]", label="越河街道")
    page.click("#create-channel button[type=submit]")
    panel = page.locator("#one-time-key")
    expect(panel).to_contain_text("只显示这一次")
    expect(panel).to_contain_text("X-Api-Key")
    key = page.locator("#channel-key").input_value()
    assert key.startswith("ywc_") and len(key) > 40, key
    row = page.locator("#channels tr[data-channel-id]")
    expect(row).to_contain_text("越河街道全部社区")
    expect(row).to_contain_text("竹竿巷社区")
    expect(row).to_contain_text("演示操作员")
    page.screenshot(path=str(tmp_path / "channels-key-zh.png"), full_page=True)

    filed = report_with(base, key)
    assert filed.status_code == 200, filed.text
    assert filed.json()[0]["service_notice"] == "received"

    page.goto(f"{base}/console/channels")  # the key is not shown again; the report is counted
    expect(page.locator("#one-time-key")).to_have_count(0)
    assert key not in page.content()
    expect(row).to_have_attribute("data-enabled", "true")
    expect(row.locator(".reports")).to_have_text("1 件")

    # Disabling: the confirm step says what it does, then the key stops at once.
    confirm = row.locator("button[data-do=confirm-disable]")
    expect(confirm).to_be_hidden()
    row.locator("summary[data-do=disable]").click()
    expect(row.locator("details.confirm")).to_contain_text("立即失效")
    confirm.click()
    page.wait_for_url(f"{base}/console/channels")
    expect(row).to_have_attribute("data-enabled", "false")
    expect(row).to_contain_text("已停用")
    expect(row.locator(".reports")).to_have_text("1 件")
    expect(row.locator("summary[data-do=disable]")).to_have_count(0)
    refused = report_with(base, key)
    assert refused.status_code == 403 and "is disabled" in refused.json()[0]["description"], refused.text
    desk.close()

    # A 360 px phone, both languages: the page itself never scrolls sideways.
    handset = chromium.phone(browser, "zh-CN")
    small = chromium.signed_in(handset, base, DEMO_USERNAME, password, "zh")
    for lang, title in (("zh", "群众上报渠道"), ("en", "Public reporting channels")):
        small.goto(f"{base}/console/channels?lang={lang}")
        expect(small.locator("main h2").first).to_have_text(title)
        expect(small.locator("#channels tr[data-channel-id]")).to_have_count(1)
        assert fits_the_screen(small), lang
        small.screenshot(path=str(tmp_path / f"channels-phone-{lang}.png"), full_page=True)
    handset.close()
