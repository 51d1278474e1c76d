"""The fleet page's agent versions in a real Chromium, desktop and a 360×740 touch phone: running and
desired version, rollouts in progress and stopped, failures and rollbacks, 简体中文 and English, and
no sideways scroll on the phone (SQLite and PostgreSQL, through the console fixture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page
from sqlalchemy.orm import Session

from alerts.fleet import record_gateway
from alerts.schema import create_schema as create_alert_schema
from common.db import make_engine
from contract import StateMessage
from registry.rollout_models import ensure_tables
from registry.rollouts import start_canary, widen
from tests.e2e import browser as chromium
from tests.e2e.test_console_browser import console, shoot  # noqa: F401 - the API process

C = "zhuganxiang"
REASON = "not healthy within 120 s: no answer at http://127.0.0.1:9108/metrics (Connection refused): the agent is not running"


def seed(database_url: str) -> None:
    db = make_engine(database_url)
    create_alert_schema(db)
    ensure_tables(db)

    def state(gateway: str, agent: str, upgrade: dict[str, Any]) -> None:
        body = {"online": True, "ts": 1_764_183_600_000, "agent": agent, "upgrade": upgrade}
        record_gateway(db, C, gateway, StateMessage.model_validate(body))

    state("gw-01", "0.2.0", {"attempt": "0.2.0", "outcome": "confirmed", "reason": "connected, seq 10 → 14"})
    with Session(db) as session, session.begin():
        start_canary(session, "0.2.0", ["gw-01"], "wang.wei")
        states = {(C, "gw-01"): {"agent": "0.2.0"}}
        widen(session, "0.2.0", states, 50)
    state("gw-02", "0.1.0", {"attempt": "0.3.0", "outcome": "rolled_back", "reason": REASON})
    with Session(db) as session, session.begin():
        start_canary(session, "0.3.0", ["gw-02"], "wang.wei")
    db.dispose()


def sign_in(context: BrowserContext, base: str) -> Page:
    return chromium.signed_in(context, base, "wang.wei", "s3cret-pass")


def test_fleet_versions_on_desktop_and_phone(
    browser: Browser,
    console: tuple[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    base, database_url = console
    seed(database_url)
    page = sign_in(chromium.desktop(browser), base)
    page.goto(f"{base}/console/fleet")
    # The API's publisher stops the rollout whose canary rolled back by itself (within a second or two).
    page.wait_for_function(
        "() => document.querySelector('[data-rollout][data-status=stopped]') !== null", timeout=15_000
    )
    page.reload()
    rows = page.locator("#versions tr[data-version-gateway]")
    assert rows.count() == 2
    gw1 = page.locator('#versions tr[data-version-gateway="gw-01"]')
    assert gw1.get_attribute("data-phase") == "current"
    assert "0.2.0" in gw1.inner_text() and "已是目标版本" in gw1.inner_text() and "已确认" in gw1.inner_text()
    gw2 = page.locator('#versions tr[data-version-gateway="gw-02"]')
    assert gw2.get_attribute("data-phase") == "rolled_back"
    text = gw2.inner_text()
    assert "0.1.0" in text and "0.3.0" in text and "已回滚" in text and "not healthy within 120 s" in text
    rollouts = page.locator("#rollouts").inner_text()
    assert "版本 0.3.0：已自动停止" in rollouts and "原因：zhuganxiang/gw-02 rolled back 0.3.0" in rollouts
    assert "版本 0.2.0：已被新的推广取代，已推广 50%" in rollouts
    assert page.locator("#upgrade-failures").get_attribute("data-rolled-back") == "1"
    assert "失败 0 台，回滚 1 台" in rollouts
    for word in ("rolled_back", "pending", "fv_", "None"):
        assert word not in page.locator("main").inner_text(), word
    shoot(page, tmp_path, "fleet-versions-desktop")

    page.goto(f"{base}/console/fleet?lang=en")
    rollouts = page.locator("#rollouts").inner_text()
    assert "Version 0.3.0: stopped by itself" in rollouts and "0 failed, 1 rolled back" in rollouts
    assert "✕ rolled back" in page.locator('#versions tr[data-version-gateway="gw-02"]').inner_text()
    assert (
        "✓ on the desired version" in page.locator('#versions tr[data-version-gateway="gw-01"]').inner_text()
    )
    page.context.close()

    phone = sign_in(chromium.phone(browser), base)
    phone.goto(f"{base}/console/fleet")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the fleet page is {width} px wide on a 360 px phone"
    cell = phone.locator('#versions tr[data-version-gateway="gw-02"] td').nth(3)
    assert cell.is_visible() and "已回滚" in cell.inner_text()
    label = phone.evaluate(
        "getComputedStyle(document.querySelector('#versions td[data-label]'), '::before').content"
    )
    assert "网关" in label  # each cell names its column on the phone, where the table head is hidden
    shoot(phone, tmp_path, "fleet-versions-phone")
    phone.context.close()
