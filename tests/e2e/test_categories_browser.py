"""A category created while the platform runs reaches a real, running `yiwang api` process without a
restart: its API lists it, a case reported in it gets its SLA, and the console (real headless Chromium,
desktop and a 360×740 touch phone) shows it by its own name in 简体中文 and English, never its id."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from api import accounts
from cases.categories import Category
from cases.policy import CasePolicy
from common.db import make_engine
from tests.e2e import browser as chromium
from tests.platform import CONFIG_DIR, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
CO2 = Category(
    code="air_co2_high",
    name_zh="二氧化碳超标",
    name_en="CO₂ too high",
    sla_hours=12,
    urgent_sla_hours=3,
    clock="continuous",
)


@dataclass
class RunningApi:
    base: str
    database_url: str
    token: str

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)

    def send(self, method: str, path: str, body: Mapping[str, object]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, self.base + path, json=body, headers=headers, timeout=10)


@pytest.fixture(params=chromium.DATABASES)
def running_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningApi]:
    database_url = chromium.fresh_database(request, tmp_path)
    db = make_engine(database_url)
    operator = accounts.create_user(db, "op", "op-pass-123", role="district_operator", display_name="区运维")
    token = accounts.issue_token(db, operator)
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
    with chromium.api_process(tmp_path, chromium.api_env(database_url, tmp_path)) as api:
        yield RunningApi(api.base, database_url, token)


def sign_in(browser: Browser, base: str, username: str, password: str, *, phone: bool = False) -> Page:
    context = chromium.phone(browser) if phone else chromium.desktop(browser)
    return chromium.signed_in(context, base, username, password)


def category_cell(page: Page) -> str:
    row = page.locator("#cases tbody tr[data-category=air_co2_high]")
    assert row.count() == 1
    return row.locator("td").nth(2).inner_text()


def test_a_category_created_elsewhere_reaches_the_running_api_and_its_console(
    running_api: RunningApi, browser: Browser, tmp_path: Path
) -> None:
    api = running_api
    assert "air_co2_high" not in {c["id"] for c in api.get("/api/v1/categories").json()}
    # Another process (a second API replica, say) stores the category; this one was never restarted.
    db = make_engine(api.database_url)
    try:
        elsewhere = CasePolicy.load(CONFIG_DIR, db)
        assert elsewhere.category_store is not None
        departments = {d.id: list(d.categories) for d in elsewhere.organisation.departments}
        elsewhere.category_store.create(CO2, department="housing", departments=departments, author="op")
    finally:
        db.dispose()
    stored = time.monotonic()
    listed = wait_for(
        lambda: {c["id"]: c for c in api.get("/api/v1/categories").json()}.get("air_co2_high"),
        5,
        "the running API to list the new category",
        interval=0.05,
    )
    print(f"picked up by the running API {time.monotonic() - stored:.2f} s after it was stored")
    assert listed["name_en"] == "CO₂ too high" and listed["sla_hours"] == {"normal": 12.0, "urgent": 3.0}

    body = {
        "community": "zhuganxiang",
        "grid": "g-north",
        "category": "air_co2_high",
        "description": "5000 ppm",
    }
    reported = api.send("POST", "/api/v1/cases", body)
    assert reported.status_code == 201, reported.text
    case = api.get(f"/api/v1/cases/{reported.json()['id']}").json()
    opened, deadline = datetime.fromisoformat(case["opened_at"]), datetime.fromisoformat(case["deadline"])
    assert (deadline - opened).total_seconds() == 12 * 3600

    desk = sign_in(browser, api.base, "op", "op-pass-123")
    assert category_cell(desk) == "二氧化碳超标"
    assert "air_co2_high" not in desk.locator("main").inner_text()
    desk.screenshot(path=str(tmp_path / "category-zh.png"), full_page=True)
    desk.click("text=English")
    assert category_cell(desk) == "CO₂ too high"
    assert "air_co2_high" not in desk.locator("main").inner_text()

    # Renamed through the running API: the console says the new name at once.
    renamed = api.send("PATCH", "/api/v1/categories/air_co2_high", {"name_en": "Indoor CO₂ too high"})
    assert renamed.status_code == 200, renamed.text
    desk.reload()
    assert category_cell(desk) == "Indoor CO₂ too high"

    phone = sign_in(browser, api.base, "li.na", "grid-pass", phone=True)  # the grid worker's own grid
    phone.goto(f"{api.base}/console")  # the queue (a field role lands on the phone view)
    assert category_cell(phone) == "二氧化碳超标"
    phone.screenshot(path=str(tmp_path / "category-phone-zh.png"), full_page=True)
    phone.goto(f"{api.base}/console?lang=en")
    assert category_cell(phone) == "Indoor CO₂ too high"
    assert "air_co2_high" not in phone.locator("main").inner_text()
    phone.screenshot(path=str(tmp_path / "category-phone-en.png"), full_page=True)
