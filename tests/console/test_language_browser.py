"""In a real headless Chromium: English chosen on the login page stays English after signing in, after
signing out, and in the same browser's next session; the times on the queue are the deployment's."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.test_console_browser import browser, console  # noqa: F401 - the real API process, Chromium

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_english_chosen_before_sign_in_is_kept(browser: Browser, console: tuple[str, str]) -> None:  # noqa: F811
    base, _ = console
    context = browser.new_context(locale="zh-CN", timezone_id="UTC")
    page = context.new_page()
    page.goto(f"{base}/console/login")
    expect(page.locator("form.login h2")).to_have_text("登录")
    page.click("text=English")
    expect(page.locator("form.login h2")).to_have_text("Sign in")
    page.fill("input[name=username]", "wang.wei")
    page.fill("input[name=password]", "s3cret-pass")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("main h2").first).to_contain_text("Open cases")
    # A case of the seeded flood: its category and grid by name, never their codes.
    row = page.locator("#cases tbody tr").first
    expect(row).to_contain_text("Flooding")
    expect(row).not_to_contain_text("g-north")
    # The opening time is Shanghai's (UTC+8), whatever the browser's own zone.
    opened = row.locator("td").nth(5).inner_text()
    assert re.fullmatch(r"\d{2}-\d{2} \d{2}:\d{2}:\d{2}", opened), opened
    shanghai = datetime.now(ZoneInfo("Asia/Shanghai"))
    shown = datetime.strptime(f"{shanghai.year}-{opened}", "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=shanghai.tzinfo
    )
    assert abs((shown - shanghai).total_seconds()) < 600, (opened, shanghai)  # seeded just now
    page.click("text=Sign out")
    page.wait_for_url(f"{base}/console/login")
    expect(page.locator("form.login h2")).to_have_text("Sign in")
    # The browser's next session: only the language cookie is left.
    kept = [c for c in context.cookies() if c["name"] == "yiwang_lang"]
    assert kept and kept[0]["value"] == "en" and kept[0]["httpOnly"]
    fresh = browser.new_context(locale="zh-CN")
    cookie = kept[0]
    fresh.add_cookies([{"name": cookie["name"], "value": cookie["value"], "url": base}])
    again = fresh.new_page()
    again.goto(f"{base}/console")
    expect(again.locator("form.login h2")).to_have_text("Sign in")
    fresh.close()
    context.close()
