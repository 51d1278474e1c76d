"""The command-centre wall in a real headless Chromium (Debian's) at 1920×1080, against the real API
process on SQLite and on PostgreSQL: everything fits on the screen (no scroll bars, no panel cut off), a
case reported through the API appears on the wall without a reload, in both languages, and a town's
operator sees their town only. The strict CSP is never violated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

from tests.api.two_towns import TOWN_A, A, Seeded, seed
from tests.e2e import browser as chromium
from tests.e2e.test_console_browser import shoot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
WALL = {"width": 1920, "height": 1080}


@pytest.fixture(params=chromium.DATABASES)
def district(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Seeded]]:
    """Two towns seeded through the real code paths, served by the real API process."""
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_schema_url")
    seeded = seed(tmp_path, url)
    env = {
        "YIWANG_DATABASE_URL": seeded.settings.database_url,
        "YIWANG_SERIES_URL": seeded.settings.series_url,
        "YIWANG_CONFIG_DIR": str(seeded.settings.config_dir),
    }
    with chromium.api_process(tmp_path, env) as api:
        yield api.base, seeded


def _watch(page: Page) -> list[str]:
    """What the browser complains about: a CSP refusal is a console error in Chromium."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.location.get("url", "").endswith("/favicon.ico"):
            return
        if message.type == "error" or "Content Security Policy" in message.text:
            problems.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda err: problems.append(str(err)))
    return problems


def _wall(browser: Browser, base: str, username: str, path: str = "/console/wall") -> tuple[Page, list[str]]:
    page = chromium.desktop(browser, viewport=WALL).new_page()
    problems = _watch(page)
    page.goto(f"{base}/console")
    chromium.sign_in(page, username, "pw-" + username)
    page.wait_for_url(f"{base}/console")
    problems.clear()  # the wall's own problems: the queue page is another test's
    page.goto(base + path)
    page.wait_for_selector("#wall-map[data-ready=true]", timeout=15_000)
    return page, problems


def _fits(page: Page) -> None:
    """No scroll bars, and nothing cut off inside the screen: every panel holds its content."""
    size = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight,"
        " document.body.scrollWidth, document.body.scrollHeight, innerWidth, innerHeight]"
    )
    width, height, body_width, body_height, view_width, view_height = size
    assert (view_width, view_height) == (1920, 1080)
    assert max(width, body_width) <= view_width and max(height, body_height) <= view_height, size
    clipped = page.evaluate(
        """() => [...document.querySelectorAll('.panel, .tile')]
                 .filter(p => p.scrollHeight > p.clientHeight + 1 || p.scrollWidth > p.clientWidth + 1)
                 .map(p => p.className + ' ' + p.scrollHeight + '>' + p.clientHeight)"""
    )
    assert clipped == []
    bottom = page.evaluate("() => document.getElementById('wall').getBoundingClientRect().bottom")
    assert bottom <= 1080


def _figure(page: Page, key: str) -> str:
    return page.locator(f"[data-figure='{key}']").inner_text()


def test_the_district_wall_fits_the_screen_and_a_new_case_appears_without_a_reload(
    browser: Browser, district: tuple[str, Seeded], tmp_path: Path
) -> None:
    base, seeded = district
    page, problems = _wall(browser, base, "district_operator")
    assert page.locator("h1").inner_text() == "任城区 · 指挥中心大屏"
    assert _figure(page, "open.total") == "4"
    assert _figure(page, "intake.channels.sensor") == "2"
    assert page.locator("#wall-categories tbody tr").count() == 2  # flooding and the fire lane
    assert page.locator(".leaflet-marker-icon[data-kind=case]").count() == 4
    assert page.locator("#wall-trend svg circle").count() == 7
    _fits(page)
    shoot(page, tmp_path, "wall-district")

    # A mark on the window survives only if the page is never reloaded.
    page.evaluate("() => { window.wallMark = 'still here'; }")
    page.wait_for_function("() => document.getElementById('wall-live').dataset.state === 'on'")
    created = httpx.post(
        f"{base}/api/v1/cases",
        headers={"Authorization": f"Bearer {seeded.tokens['admin']}"},
        json={"community": A, "grid": "g-south", "category": "gas_leak", "description": "燃气味"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    new_id = created.json()["id"]
    page.wait_for_function(
        "() => document.querySelector(\"[data-figure='open.total']\").textContent === '5'", timeout=15_000
    )
    page.wait_for_selector(f".leaflet-marker-icon[data-kind=case][data-id='{new_id}']", timeout=15_000)
    assert page.evaluate("() => window.wallMark") == "still here"
    assert _figure(page, "intake.channels.console") == "1"  # the admin is an account: the console's channel
    assert page.locator("#wall-categories tbody tr").count() == 3
    assert page.locator("#wall-categories tbody tr", has_text="燃气泄漏").count() == 1
    _fits(page)
    shoot(page, tmp_path, "wall-district-live")

    page.goto(f"{base}/console/wall?lang=en")
    page.wait_for_selector("#wall-map[data-ready=true]", timeout=15_000)
    assert page.locator("h1").inner_text() == "任城区 · Command centre wall"
    assert page.locator("#wall-categories tbody tr", has_text="Gas leak").count() == 1
    assert "Received today" in page.locator(".tiles").inner_text()
    assert "Alerting" in page.locator(".devices").inner_text()
    _fits(page)
    shoot(page, tmp_path, "wall-district-en")
    assert problems == []


def test_a_town_operator_sees_their_own_town_on_the_wall(
    browser: Browser, district: tuple[str, Seeded], tmp_path: Path
) -> None:
    base, _ = district
    page, problems = _wall(browser, base, "town_b")
    assert page.locator("h1").inner_text() == "新河镇 · 指挥中心大屏"
    assert _figure(page, "open.total") == "2"
    assert page.locator(".leaflet-marker-icon[data-kind=case]").count() == 2
    assert page.locator(".wall-head nav a[href^='/console/wall?town=']").count() == 0  # no other scopes
    _fits(page)
    shoot(page, tmp_path, "wall-town")
    assert problems == []
    response = page.goto(f"{base}/console/wall?town={TOWN_A}")
    assert response is not None and response.status == 404
    assert "您的辖区内没有这个街道" in page.locator("#wall-refused").inner_text()
