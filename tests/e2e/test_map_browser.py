"""The console's map in a real headless Chromium (Debian's): the demo community's devices and its open
case appear as markers, a click or tap on the case opens its page, on a desktop and on a phone, and the
strict Content-Security-Policy is never violated (Leaflet is served by the API itself)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

from tests.e2e import browser as chromium
from tests.e2e import test_console_browser as console_browser
from tests.e2e.browser import PHONE_HEIGHT, PHONE_WIDTH
from tests.e2e.test_console_browser import shoot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
# The console tests' API process with its demo accounts and case (Chromium is tests/e2e/conftest.py's).
console = console_browser.console


def _watch(page: Page) -> list[str]:
    """Everything the browser complains about: CSP refusals are console errors in Chromium."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # The console has no favicon: the browser's own request for one is not the page's doing.
        if message.location.get("url", "").endswith("/favicon.ico"):
            return
        if message.type == "error" or "Content Security Policy" in message.text:
            problems.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda err: problems.append(str(err)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return problems


def _markers(page: Page, kind: str) -> int:
    page.wait_for_selector("#map[data-ready=true]", timeout=15_000)
    return page.locator(f".leaflet-marker-icon[data-kind={kind}]").count()


def test_the_demo_communitys_devices_and_open_case_are_on_the_map_and_open_their_pages(
    browser: Browser, console: tuple[str, str], tmp_path: Path
) -> None:
    base, _ = console
    page = sign_in(browser, base, "wang.wei", "s3cret-pass")
    problems = _watch(page)
    page.click("header a[href='/console/map']")
    page.wait_for_url(f"{base}/console/map/zhuganxiang")
    assert _markers(page, "device") == 30
    assert _markers(page, "case") == 1
    assert page.locator("path.leaflet-interactive").count() == 9  # 3 grids and 6 buildings
    assert page.locator(".leaflet-tile").count() == 0  # no base layer unless one is configured
    flood = page.locator(".leaflet-marker-icon[data-kind=case]")
    assert flood.get_attribute("data-sla") in ("on_time", "due_soon")
    assert "积水内涝" in (flood.get_attribute("title") or "")
    assert page.locator("#map-status").inner_text() == ""  # every case placed
    shoot(page, tmp_path, "map")
    case_id = flood.get_attribute("data-id")
    flood.click()
    page.wait_for_url(f"{base}/console/cases/{case_id}")
    page.goto(f"{base}/console/map/zhuganxiang?lang=en")
    assert _markers(page, "device") == 30
    assert "Alerting" in page.locator(".map-legend").inner_text()
    # A device opens its page too, from the keyboard as well as by a click.
    page.locator(".leaflet-marker-icon[data-kind=device][data-id=wl-03]").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/console/devices/zhuganxiang/wl-03")
    assert problems == []


def test_on_a_phone_the_map_fills_the_screen_and_a_tap_opens_the_case(
    browser: Browser, console: tuple[str, str], tmp_path: Path
) -> None:
    base, _ = console
    context = chromium.phone(browser)
    page = context.new_page()
    problems = _watch(page)
    page.goto(f"{base}/console/map")
    chromium.sign_in(page, "li.na", "grid-pass")  # the north grid's worker
    page.wait_for_url(f"{base}/console/field")  # a field role lands on the phone view
    page.goto(f"{base}/console/map")
    page.wait_for_url(f"{base}/console/map/zhuganxiang")
    assert _markers(page, "device") == 14  # her grid's devices only
    assert _markers(page, "case") == 1
    box = page.locator("#map").bounding_box()
    assert box is not None and box["width"] >= PHONE_WIDTH - 20 and box["height"] >= 0.6 * PHONE_HEIGHT
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE_WIDTH
    shoot(page, tmp_path, "map-phone")
    flood = page.locator(".leaflet-marker-icon[data-kind=case]")
    case_id = flood.get_attribute("data-id")
    flood.tap()
    page.wait_for_url(f"{base}/console/cases/{case_id}")
    assert problems == []
    context.close()
