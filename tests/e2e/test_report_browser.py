"""A resident on a phone (real headless Chromium at 360×740 with touch, against the real API process on
SQLite and a real PostgreSQL): files a report with a photo on /report, follows the status link, an
operator works the case to closure through the API, and the status page says it is closed. The phone's
position goes to its grid. Both pages fit the phone without sideways scrolling, in both languages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, BrowserContext, Page, expect

from api import accounts
from cases.public_channels import create_channel
from common.db import make_engine
from tests.e2e import browser as chromium

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@dataclass(frozen=True)
class Live:
    base: str
    operator: str  # a district operator's token
    worker: str  # the grid worker's of g-north


@pytest.fixture(params=chromium.DATABASES)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    database_url = chromium.fresh_database(request, tmp_path)
    db = make_engine(database_url)
    operator = accounts.issue_token(db, accounts.create_user(db, "op", "op-pass-123", "district_operator"))
    worker = accounts.issue_token(
        db,
        accounts.create_user(
            db, "li.na", "grid-pass-123", "grid_worker", "李娜", community="zhuganxiang", grid="g-north"
        ),
    )
    create_channel(db, "公众上报页", ["zhuganxiang"], town=None, serves_page=True, actor="test")
    db.dispose()
    env = chromium.api_env(database_url, tmp_path, YIWANG_ATTACHMENTS_DIR=str(tmp_path / "attachments"))
    with chromium.api_process(tmp_path, env, ready_path="/report") as api:
        yield Live(api.base, operator, worker)


def photo(tmp_path: Path) -> Path:
    """A phone-sized picture of a blocked lane (what a camera gives, re-encoded by the server)."""
    image = Image.new("RGB", (1200, 900), (90, 110, 130))
    ImageDraw.Draw(image).rectangle((300, 300, 900, 700), fill=(220, 40, 40))
    path = tmp_path / "lane.jpg"
    image.save(path, "JPEG", quality=90)
    return path


def phone(browser: Browser, lang: str = "zh-CN", **extra: Any) -> tuple[BrowserContext, Page]:
    context = chromium.phone(browser, lang, **extra)
    return context, context.new_page()


def fits(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width} px wide on a 360 px phone"


def call(live: Live, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    answer = httpx.request(method, live.base + path, headers={"Authorization": f"Bearer {token}"}, **kw)
    assert answer.status_code < 300, answer.text
    return answer


def test_a_resident_reports_with_a_photo_and_follows_it_to_closure(
    browser: Browser,
    live: Live,
    tmp_path: Path,
) -> None:
    context, page = phone(browser)
    page.goto(f"{live.base}/report")
    expect(page.locator("h1")).to_have_text("群众上报")
    fits(page)
    page.locator("select[name=category]").select_option(label="消防通道占用")
    page.locator("textarea[name=description]").fill("<b>电动车</b> 堵住消防通道 **三天了**")
    page.locator("input[name=photo]").set_input_files(str(photo(tmp_path)))
    page.locator("select[name=building]").select_option(label="竹竿巷1号院")
    page.locator("input[name=phone]").fill("13900000000")
    page.locator("button[type=submit]").tap()
    page.wait_for_url(re.compile(r"/report/\d+\?t=[\w-]+$"))
    status_url = page.url
    case_id = int(re.findall(r"/report/(\d+)", status_url)[0])
    expect(page.locator("#report-status")).to_have_attribute("data-state", "NEW")
    expect(page.locator("#state-words")).to_contain_text("待受理")
    expect(page.locator("#your-words")).to_have_text("<b>电动车</b> 堵住消防通道 **三天了**")  # as text
    assert "13900000000" not in page.content()
    fits(page)

    # The photo reached the case, re-encoded; an operator makes it public for the resident to see.
    [stored] = call(live, live.operator, "GET", f"/api/v1/cases/{case_id}/attachments").json()
    assert stored["width"] <= 1600
    call(live, live.operator, "POST", f"/api/v1/attachments/{stored['id']}/public")

    # The operator works the case to closure (the grid worker signs and reports back).
    for token, action, params in (
        (live.operator, "accept", {}),
        (live.operator, "verify", {}),
        (live.operator, "assign", {"assignee": "li.na"}),
        (live.worker, "sign", {}),
        (live.worker, "feedback", {}),
        (live.operator, "check", {}),
        (live.operator, "pass", {}),
    ):
        body = {"action": action, "params": params, "note": "已清理"}
        call(live, token, "POST", f"/api/v1/cases/{case_id}/actions", json=body)

    page.reload()
    expect(page.locator("#report-status")).to_have_attribute("data-state", "CLOSED")
    expect(page.locator("#state-words")).to_contain_text("结案")
    expect(page.locator("#state-words")).to_contain_text("已办结")
    expect(page.locator("#steps li")).to_have_count(8)  # reported, then the seven steps, in words
    assert "李娜" not in page.content() and "li.na" not in page.content()
    image = page.locator(".photos img")
    expect(image).to_have_count(1)
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    page.locator("a.lang").tap()  # English, the same report
    expect(page.locator("#state-words")).to_contain_text("Closed · Done")
    fits(page)
    context.close()


def test_the_phones_position_files_into_its_grid(browser: Browser, live: Live) -> None:
    context, page = phone(
        browser,
        "en-US",
        geolocation={"latitude": 35.4020, "longitude": 116.5900},
        permissions=["geolocation"],
    )
    page.goto(f"{live.base}/report?lang=en")
    expect(page.locator("h1")).to_have_text("Report a problem")
    fits(page)
    page.locator("select[name=category]").select_option(label="Fire lane blocked")
    page.locator("textarea[name=description]").fill("Bikes block the fire lane")
    page.locator("#use-position").tap()
    expect(page.locator("#position-status")).to_contain_text("Position taken")
    page.locator("button[type=submit]").tap()
    page.wait_for_url(re.compile(r"/report/\d+\?t=[\w-]+$"))
    case_id = int(re.findall(r"/report/(\d+)", page.url)[0])
    case = call(live, live.operator, "GET", f"/api/v1/cases/{case_id}").json()
    assert case["grid"] == "g-south"  # 南区网格's outline holds the position
    context.close()
