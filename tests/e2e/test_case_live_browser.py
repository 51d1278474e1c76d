"""The case page, live, in a real headless Chromium (Debian's) against the real API process (SQLite and
PostgreSQL): an operator accepts a case and starts verifying it; meanwhile another sensor's alert joins the
case through the real intake. The page shows the new timeline event and evidence without a reload (a
marker set in the page survives), keeps the half-filled form, and the verification — sent with the version
the operator saw — succeeds. No Content-Security-Policy complaint on the way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from alerts.engine import AlertEngine
from alerts.intake import CaseBook
from alerts.rules import load_rules
from cases.actions import CaseFlow
from cases.policy import CasePolicy
from common.db import make_engine
from contract import Reading
from contract.catalog import load_catalog
from tests.e2e import browser as chromium
from tests.e2e import test_console_browser as console_browser
from tests.e2e.test_console_browser import act, shoot, sign_in
from tests.e2e.test_map_browser import _watch
from tests.e2e.test_supervision_browser import _overflowing
from tests.platform import CONFIG_DIR

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
console = console_browser.console


def alert_joins(database_url: str, device: str = "wl-02") -> None:
    """wl-02, in the same grid as the case's wl-01, reads 75 cm: its alert joins the open case."""
    policy = CasePolicy.load(CONFIG_DIR)
    db = make_engine(database_url)
    book = CaseBook(db, policy, timedelta(hours=1))
    alerts = AlertEngine(load_rules(CONFIG_DIR, policy.categories), load_catalog(CONFIG_DIR))
    now = datetime.now(UTC)
    reading = Reading(device=device, ts=int(now.timestamp() * 1000), values={"level_cm": 75})
    assert book.apply(alerts.on_reading("zhuganxiang", "gw-01", reading), now=now)
    db.dispose()


def timeline_actions(page: Page) -> list[str]:
    actions: list[str] = page.locator("#timeline td[data-action]").evaluate_all(
        "cells => cells.map(c => c.dataset.action)"
    )
    return actions


def test_an_alert_joins_while_the_operator_verifies_and_the_page_follows(
    browser: Browser, console: tuple[str, str], tmp_path: Path
) -> None:
    base, database_url = console
    page = sign_in(browser, base, "wang.wei", "s3cret-pass")
    problems = _watch(page)
    page.locator("#cases tbody tr", has_text="北区网格").locator("a").click()
    page.wait_for_url(f"{base}/console/cases/*")
    act(page, "accept")
    assert page.locator("#case-state").get_attribute("data-state") == "VERIFYING"
    seen_version = page.locator("form[data-action=verify] [name=expected_version]").get_attribute("value")
    assert page.locator("#evidence tr[data-device]").count() == 1

    # The operator starts the verification; the page is marked, so a reload would show.
    page.evaluate("() => { window.notReloaded = 'still the same page'; }")
    page.locator("form[data-action=verify] [name=note]").fill("现场核实：积水约 70 cm")
    alert_joins(database_url)

    page.wait_for_function(
        "() => document.querySelector('#timeline td[data-action=alert_joined]') !== null", timeout=15_000
    )
    assert page.evaluate("() => window.notReloaded") == "still the same page"
    assert int(page.locator("#case-live").get_attribute("data-live-updates") or "0") >= 1
    assert page.locator("#evidence tr[data-device]").count() == 2  # the joining sensor's evidence too
    assert "水位" in page.locator("#timeline").inner_text()  # the system note, in words
    # The half-written form was kept (with the version the operator saw), and the page says why.
    verify = page.locator("form[data-action=verify]")
    assert verify.locator("[name=note]").input_value() == "现场核实：积水约 70 cm"
    assert verify.locator("[name=expected_version]").get_attribute("value") == seen_version
    assert "有新动态" in page.locator("#live-status").inner_text()
    shoot(page, tmp_path, "case-live-desktop-zh")

    verify.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("#case-error").count() == 0, page.locator("#case-error").inner_text()
    assert page.locator("#case-state").get_attribute("data-state") == "FILED"
    assert timeline_actions(page)[-2:] == ["alert_joined", "verify"]

    # With no form in hand, the forms follow the case: someone assigns it elsewhere (a phone, the API).
    page.evaluate("() => { window.notReloaded = 'again'; }")
    case_id = int(page.url.rsplit("/", 1)[-1].split("?")[0])
    db = make_engine(database_url)
    version = CaseFlow(db, CasePolicy.load(CONFIG_DIR)).act(
        case_id, "assign", actor="wang.wei", params={"assignee": "li.na"}
    )
    db.dispose()
    page.wait_for_function(
        "() => document.querySelector('#case-state').dataset.state === 'ASSIGNED'", timeout=15_000
    )
    assert page.evaluate("() => window.notReloaded") == "again"
    assert page.locator("form[data-action=assign]").count() == 0
    versions = page.locator("#actions [name=expected_version]").evaluate_all("fs => fs.map(f => f.value)")
    assert versions and set(versions) == {str(version)}
    assert "已自动更新" in page.locator("#live-status").inner_text()
    assert problems == []

    # The grid worker it went to follows it on a 360×740 touch phone, in English: it fits, and grows live.
    phone = chromium.phone(browser, "en-US").new_page()
    phone_problems = _watch(phone)
    phone.goto(f"{base}/console/login?lang=en")
    chromium.sign_in(phone, "li.na", "grid-pass")
    phone.wait_for_load_state()
    phone.goto(f"{base}/console/cases/{case_id}")
    assert phone.locator("#case-state").get_attribute("data-state") == "ASSIGNED"
    phone.evaluate("() => { window.notReloaded = 'phone'; }")
    alert_joins(database_url, device="wl-01")  # the first sensor rises again
    phone.wait_for_function(
        "() => document.querySelectorAll('#timeline td[data-action=alert_joined]').length === 2",
        timeout=15_000,
    )
    assert phone.evaluate("() => window.notReloaded") == "phone"
    assert "Updated live" in phone.locator("#live-status").inner_text()
    assert _overflowing(phone) == []
    shoot(phone, tmp_path, "case-live-phone-en")
    assert phone_problems == []
