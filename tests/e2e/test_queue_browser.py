"""The queue as a live work tool, in a real headless Chromium against the real API process (SQLite and
PostgreSQL): an operator filters it (the URL follows), a case reported through the API meanwhile appears
in the filtered list in place, a sensor case outside the filter does not, and a case voided leaves it —
all without a page reload (the page's load marker stays)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from api import accounts
from common.db import make_engine
from tests.e2e import browser as chromium
from tests.e2e.test_console_browser import console, shoot  # noqa: F401 - the API process
from tests.factories import open_flooding_cases

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
ROWS = "#cases tbody tr"


def api_token(database_url: str) -> str:
    db = make_engine(database_url)
    try:
        user = accounts.create_user(db, "hotline", "hotline-pass", role="district_operator")
        return accounts.issue_token(db, user)
    finally:
        db.dispose()


def loaded_at(page: Page) -> str:
    """The marker the queue's script sets once per page load: a reload would change it."""
    return str(page.evaluate("() => document.documentElement.dataset.loadedAt"))


def test_a_filtered_queue_follows_new_and_closed_cases_in_place(
    browser: Browser,
    console: tuple[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    base, database_url = console
    token = api_token(database_url)
    context = chromium.desktop(browser, **chromium.DESKTOP)
    page = chromium.signed_in(context, base, "wang.wei", "s3cret-pass")
    expect(page.locator(ROWS)).to_have_count(1)  # the seeded flood, a sensor case
    expect(page.locator("#queue-filters select[name=source] option[value=sensor]")).to_have_text("传感器 (1)")

    # The operator narrows the queue to residents' reports: the URL says so, the sensor case goes.
    page.select_option("#queue-filters select[name=source]", "report")
    page.wait_for_url(lambda url: parse_qs(urlparse(url).query).get("source") == ["report"])
    expect(page.locator("#no-cases")).to_be_visible()
    expect(page.locator("#queue-filtered")).to_have_text("当前筛选：来源：居民上报")
    expect(page.locator("#queue-clear")).to_be_visible()
    filtered_url = page.url
    marker = loaded_at(page)
    assert marker not in ("", "None", "undefined")
    page.wait_for_function("() => document.getElementById('queue-live').classList.contains('on')")

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as api:
        reported = api.post(
            "/api/v1/cases",
            json={
                "community": "zhuganxiang",
                "grid": "g-middle",
                "category": "fire_lane_blocked",
                "description": "消防通道被货车堵住",
                "location": "竹竿巷7号院 东门",
            },
        )
        assert reported.status_code == 201, reported.text
        case_id = reported.json()["id"]
        # A sensor case in another grid at the same time: outside the filter, it must not show.
        open_flooding_cases(database_url, [datetime.now(UTC)], device="wl-03", gateway="gw-02")

        row = page.locator(f'{ROWS}[data-case-id="{case_id}"]')
        expect(row).to_be_visible(timeout=15_000)
        expect(row).to_contain_text("消防通道占用")
        expect(row).to_contain_text("中区网格")
        expect(row.locator("td[data-source]")).to_have_text("居民上报")
        expect(page.locator(ROWS)).to_have_count(1)
        expect(page.locator("#queue-total")).to_have_text("1")
        expect(page.locator("#queue-filters select[name=source] option[value=sensor]")).to_have_text(
            "传感器 (2)", timeout=15_000
        )
        assert loaded_at(page) == marker and page.url == filtered_url  # in place: no reload, same view
        shoot(page, tmp_path, "queue-filtered")

        voided = api.post(
            f"/api/v1/cases/{case_id}/actions",
            json={"action": "void", "note": "重复", "params": {"reason": "duplicate"}},
        )
        assert voided.status_code == 200, voided.text
    expect(page.locator(f'{ROWS}[data-case-id="{case_id}"]')).to_have_count(0, timeout=15_000)
    expect(page.locator("#no-cases")).to_be_visible()
    expect(page.locator("#queue-total")).to_have_text("0")
    assert loaded_at(page) == marker and page.url == filtered_url

    # "Clear" brings back the whole queue: both sensor cases.
    page.click("#queue-clear")
    page.wait_for_url(f"{base}/console")
    expect(page.locator(ROWS)).to_have_count(2)
    context.close()
