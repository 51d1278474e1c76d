"""Alarms and calls in a real headless Chromium (Debian's), on a desktop: a town operator acknowledges a
firing alert with a note (shown afterwards, the alert still firing), silences it from the form with a
rule, a device and a custom duration, and opens a case from a phone call that merges with the open
sensor case of the same grid and category — under the strict CSP, without a console error."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from alerts.engine import AlertEngine
from alerts.intake import CaseBook
from alerts.rules import load_rules
from cases.policy import CasePolicy
from common.db import make_engine
from contract import Reading
from contract.catalog import load_catalog
from tests.e2e import browser as chromium
from tests.e2e import test_console_browser as console_browser
from tests.e2e.test_console_browser import shoot, sign_in
from tests.e2e.test_map_browser import _watch
from tests.platform import CONFIG_DIR

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
console = console_browser.console
FIRING = "flooding-water-level|zhuganxiang|wl-02"


def _water_rises(database_url: str) -> None:
    """wl-02 (北区网格) at 80 cm and staying there: a firing alert that joins the open flooding case."""
    db = make_engine(database_url)
    policy = CasePolicy.load(CONFIG_DIR)
    engine = AlertEngine(load_rules(CONFIG_DIR, policy.categories), load_catalog(CONFIG_DIR))
    now = datetime.now(UTC)
    reading = Reading(device="wl-02", ts=int(now.timestamp() * 1000), values={"level_cm": 80})
    CaseBook(db, policy, timedelta(minutes=1)).apply(
        engine.on_reading("zhuganxiang", "gw-01", reading), now=now
    )
    db.dispose()


def _acknowledge(page: Page, base: str) -> None:
    page.goto(f"{base}/console/alerts?lang=zh")
    row = page.locator(f'#alerts tr[data-fingerprint="{FIRING}"]')
    assert row.get_attribute("data-acknowledged") == "no" and row.get_attribute("data-status") == "firing"
    row.locator("input[name=note]").fill("泵车已出发，预计 20 分钟到")
    row.locator("form.ack-form button").click()
    page.wait_for_url(f"{base}/console/alerts?done=ack")
    row = page.locator(f'#alerts tr[data-fingerprint="{FIRING}"]')
    assert row.get_attribute("data-acknowledged") == "yes"
    assert row.get_attribute("data-status") == "firing"  # acknowledged is not resolved
    note = row.locator(".ack-note").inner_text()
    assert re.fullmatch(r"✓?\s*王伟 于 \d\d-\d\d \d\d:\d\d 确认：泵车已出发，预计 20 分钟到", note.strip()), (
        note
    )
    assert "已确认告警" in page.locator("#alarm-done").inner_text()


def _silence(page: Page, base: str) -> None:
    form = page.locator("form#new-silence")
    custom = form.locator(".custom-hours")
    assert custom.is_hidden()  # only "custom" needs the typed length
    assert (
        form.locator("label", has=page.locator("select[name=duration]")).inner_text().startswith("静默时长")
    )
    form.locator("select[name=rule]").select_option("flooding-water-level")
    form.locator("select[name=device]").select_option("zhuganxiang/wl-02")
    form.locator("select[name=duration]").select_option("custom")
    assert custom.is_visible()
    custom.locator("input").fill("2.5")
    form.locator("input[name=comment]").fill("管道施工")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/console/alerts?done=silence")
    sentences = page.locator("#silences .silence-sentence").all_inner_texts()
    sentence = r"王伟 静默了规则「积水水位超限」、设备「水位 · 地下室」，至 \d{4}-\d\d-\d\d \d\d:\d\d，原因：管道施工"
    assert any(re.fullmatch(sentence, s.strip()) for s in sentences), sentences


def _take_a_call(page: Page, base: str) -> str:
    page.goto(f"{base}/console/cases/new?lang=zh")
    form = page.locator("form#intake")
    form.locator("select[name=category]").select_option("flooding")
    form.locator("select[name=community]").select_option("zhuganxiang")
    form.locator("select[name=grid]").select_option("g-north")
    # The grid narrows the buildings: the south grid's are no longer offered.
    assert form.locator("select[name=building] option[value=b-05]").is_disabled()
    form.locator("select[name=building]").select_option("b-02")
    form.locator("input[name=location]").fill("东侧井盖")
    form.locator("textarea[name=description]").fill("居民来电：地下室进水约 20 厘米")
    form.locator("input[name=urgency][value=urgent]").check()
    form.locator("input[name=channel][value=hotline]").check()
    form.locator("input[name=phone]").fill("13800138000")
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/console/cases/new\?merged=1&recorded=\d+$"))
    told = page.locator("#intake-merged")
    assert told.get_attribute("data-case-id") == "1"
    assert "同一网格、同一类别已有在办工单 #1" in told.inner_text()
    told.locator("a").click()
    page.wait_for_url(f"{base}/console/cases/1")
    return page.url


def test_an_operator_acknowledges_silences_and_takes_a_call_that_merges(
    browser: Browser, console: tuple[str, str], tmp_path: Path
) -> None:
    base, database_url = console
    _water_rises(database_url)
    page = sign_in(browser, base, "wang.wei", "s3cret-pass")
    problems = _watch(page)
    _acknowledge(page, base)
    shoot(page, tmp_path, "alarms-acknowledged-desktop-zh")
    _silence(page, base)
    shoot(page, tmp_path, "alarms-silenced-desktop-zh")
    page.goto(f"{base}/console/rules?lang=en")
    condition = page.locator('#rules tr[data-rule="flooding-water-level"] td.condition').inner_text()
    assert condition == "Water level ≥ 50 cm, clears below 40 cm"
    page.goto(f"{base}/console/alerts/history?device=zhuganxiang/wl-02&lang=zh")
    assert page.locator("#alert-history tr[data-kind=firing]").count() == 1
    _take_a_call(page, base)
    shoot(page, tmp_path, "intake-merged-case-desktop-zh")
    page.close()
    assert problems == []


def test_the_call_form_fits_a_phone(browser: Browser, console: tuple[str, str], tmp_path: Path) -> None:
    base, _ = console
    phone = chromium.phone(browser, "en-US")
    page = phone.new_page()
    problems = _watch(page)
    page.goto(f"{base}/console?lang=en")
    chromium.sign_in(page, "wang.wei", "s3cret-pass", tap=True)
    page.wait_for_url(f"{base}/console")
    page.goto(f"{base}/console/cases/new?lang=en")
    wide = page.evaluate(
        """() => [...document.querySelectorAll('main form#intake, main form#intake *')]
             .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
             .map(e => e.tagName + '.' + e.className)"""
    )
    assert wide == []
    button = page.locator("form#intake button[type=submit]").bounding_box()
    assert button is not None and button["height"] >= 44
    shoot(page, tmp_path, "intake-phone-en")
    phone.close()
    assert problems == []
