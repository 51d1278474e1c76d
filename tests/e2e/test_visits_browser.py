"""Return visits and the bell in a real headless Chromium (Debian's), against the real API process on
SQLite and PostgreSQL. On a desktop, the town operator finds a closed case on the visit list, opens
its visit, sees the reporter's phone, records "unsatisfied" and the case is reopened. On a 360×740
touch phone, a grid worker's bell shows a case assigned to them within 5 s, in words, with the
resident's markup shown as text. The strict Content-Security-Policy is never violated."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from api import accounts
from common.db import make_engine
from tests.e2e import browser as chromium
from tests.e2e import test_console_browser as console_browser
from tests.e2e.test_console_browser import shoot, sign_in
from tests.e2e.test_map_browser import _watch

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
console = console_browser.console
REPORTER = "13812345678"
MARKUP = "<b>三号楼</b> **后门**"


def _operator(database_url: str) -> dict[str, str]:
    db = make_engine(database_url)
    user = accounts.create_user(db, "op", "op-pass-123", role="district_operator")
    token = accounts.issue_token(db, user)
    db.dispose()
    return {"Authorization": f"Bearer {token}"}


def _report(api: httpx.Client, category: str, location: str, phone: str | None = None) -> int:
    body: dict[str, Any] = {
        "community": "zhuganxiang",
        "grid": "g-north",
        "category": category,
        "description": "居民反映",
        "location": location,
    }
    if phone:
        body["reporter_phone"] = phone
    created = api.post("/api/v1/cases", json=body)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _act(api: httpx.Client, case_id: int, *steps: tuple[str, dict[str, str]]) -> str:
    state = ""
    for action, params in steps:
        done = api.post(f"/api/v1/cases/{case_id}/actions", json={"action": action, "params": params})
        assert done.status_code == 200, (action, done.text)
        state = done.json()["state"]
    return state


Steps = tuple[tuple[str, dict[str, str]], ...]
FILE: Steps = (("accept", {}), ("verify", {}))
CLOSE: Steps = (
    ("assign", {"assignee": "li.na"}),
    ("sign", {}),
    ("feedback", {}),
    ("check", {}),
    ("pass", {}),
)


def test_a_visit_reopens_the_case_and_the_bell_rings_on_a_phone(
    browser: Browser, console: tuple[str, str], tmp_path: Path
) -> None:
    base, database_url = console
    api = httpx.Client(base_url=base, headers=_operator(database_url), timeout=10)
    closed = _report(api, "fire_lane_blocked", "3号楼", REPORTER)
    assert _act(api, closed, *FILE, *CLOSE) == "CLOSED"

    # Desktop, in Chinese: the list, the form with the phone, "unsatisfied" → reopened.
    desk = sign_in(browser, base, "wang.wei", "s3cret-pass")
    problems = _watch(desk)
    desk.click("header a#nav-visits")
    desk.wait_for_url(f"{base}/console/visits")
    row = desk.locator(f"#visits tr[data-case='{closed}']")
    assert row.count() == 1 and REPORTER not in desk.locator("main").inner_text()
    assert "消防通道占用" in row.inner_text() and "fire_lane_blocked" not in row.inner_text()
    shoot(desk, tmp_path, "visits-desktop-zh")
    row.locator("a.visit-open").click()
    desk.wait_for_url(f"{base}/console/visits/{closed}")
    assert desk.locator("#visit-phone").inner_text().strip() == REPORTER
    desk.locator("label", has_text="不满意").locator("input[type=radio]").check()
    desk.fill("#visit-form textarea[name=note]", "居民说通道仍被占用")
    shoot(desk, tmp_path, "visit-form-desktop-zh")
    desk.click("#visit-form button[type=submit]")
    desk.wait_for_url(f"{base}/console/visits?done=reopened*")
    assert "案件已重新办理" in desk.locator("#visit-done").inner_text()
    assert desk.locator(f"#visits tr[data-case='{closed}']").count() == 0
    assert api.get(f"/api/v1/cases/{closed}").json()["state"] == "REOPENED"
    desk.close()

    # A phone, in English: the grid worker's bell tells of a case assigned to them within 5 s.
    phone = chromium.phone(browser, "en-US")
    page: Page = phone.new_page()
    problems += _watch(page)
    page.goto(f"{base}/console/login?lang=en")
    chromium.sign_in(page, "li.na", "grid-pass")
    page.wait_for_load_state()
    page.goto(f"{base}/console?lang=en")
    # li.na holds the closed case from its assignment: one unread already, shown by the first poll.
    page.wait_for_function("() => document.getElementById('bell-count').textContent === '1'", timeout=5_000)
    assigned = _report(api, "door_left_open", MARKUP)
    _act(api, assigned, *FILE)
    started = time.monotonic()
    _act(api, assigned, ("assign", {"assignee": "li.na"}))
    page.wait_for_function("() => document.getElementById('bell-count').textContent === '2'", timeout=5_000)
    took = time.monotonic() - started
    print(f"assignment to the phone's bell: {took * 1000:.0f} ms")
    assert took < 5
    page.locator("#bell summary").tap()
    item = page.locator("#bell-list li").first
    text = item.inner_text()
    assert f"Case #{assigned} (" in text and "was assigned to you" in text and MARKUP in text
    assert page.locator("#bell-list b").count() == 0  # the resident's markup is text, not bold
    assert "2 unread" in page.locator("#bell-status").inner_text()
    panel = page.locator(".bell-panel").bounding_box()
    assert panel is not None and panel["x"] >= 0 and panel["x"] + panel["width"] <= chromium.PHONE_WIDTH
    shoot(page, tmp_path, "bell-phone-en")
    page.locator("#bell-read").tap()
    page.wait_for_function("() => document.getElementById('bell-count').hidden")
    assert "No unread notifications" in page.locator("#bell-status").inner_text()
    item.locator("a").tap()
    page.wait_for_url(f"{base}/console/cases/{assigned}*")
    phone.close()
    api.close()
    assert problems == []
