"""Supervision (督办) in a real headless Chromium (Debian's): a town operator issues an order from the case
page on a desktop, in Chinese; the grid worker answers it on a 360×740 touch phone, in English. The
states read as a word beside a shape, nothing overflows the phone's width, and the strict
Content-Security-Policy is never violated."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e import browser as chromium
from tests.e2e import test_console_browser as console_browser
from tests.e2e.test_console_browser import shoot, sign_in
from tests.e2e.test_map_browser import _watch

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
console = console_browser.console
REASON = "积水未排，居民再次反映"


def _overflowing(page: Page) -> list[str]:
    """Elements wider than the window, and the document itself if it scrolls sideways."""
    found: list[str] = page.evaluate(
        """() => [document.documentElement, ...document.querySelectorAll('header, header *, main, main *')]
             .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                          || (e === document.documentElement && e.scrollWidth > window.innerWidth))
             .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)"""
    )
    return found


def _issue_on_the_case(page: Page, base: str) -> str:
    """From the queue to the flooding case, and a supervision order on it; returns the case's path."""
    page.locator("tr[data-case-id] a").first.click()
    page.wait_for_url(f"{base}/console/cases/*")
    path = page.url.removeprefix(base)
    form = page.locator("form[data-action=supervise]")
    assert form.locator("select[name=target_unit] option").all_inner_texts() == ["北区网格"]
    form.locator("[name=reason]").fill(REASON)
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}{path}?supervised=1#timeline")
    assert (
        REASON in page.locator("#timeline").inner_text()
        and "人工督办" in page.locator("#timeline").inner_text()
    )
    return path


def test_a_town_issues_on_a_desktop_and_the_grid_answers_on_a_phone(
    browser: Browser, console: tuple[str, str], tmp_path: Path
) -> None:
    base, _ = console
    desk = sign_in(browser, base, "wang.wei", "s3cret-pass")
    problems = _watch(desk)
    case_path = _issue_on_the_case(desk, base)
    desk.click("header a#nav-supervision")
    desk.wait_for_url(f"{base}/console/supervision")
    card = desk.locator("article.sup-order").first
    assert card.get_attribute("data-state") == "open"
    assert card.locator(".sup-state").inner_text().strip() == "○ 办理中"
    assert REASON in card.inner_text() and "北区网格" in card.inner_text()
    assert card.locator("form.sup-answer-form").count() == 0  # the town does not answer for the grid
    shoot(desk, tmp_path, "supervision-desktop-zh")
    assert _overflowing(desk) == []
    desk.goto(f"{base}/console/supervision?lang=en")
    assert desk.locator("article.sup-order .sup-state").first.inner_text().strip() == "○ Open"
    assert "Supervision and notices" in desk.locator("main h2").first.inner_text()
    desk.goto(f"{base}/console/supervision?lang=zh")
    desk.goto(f"{base}{case_path}")  # the case page, with its issue form
    shoot(desk, tmp_path, "supervision-case-desktop-zh")
    assert _overflowing(desk) == []
    desk.close()

    phone = chromium.phone(browser, "en-US")
    page = phone.new_page()
    problems += _watch(page)
    page.goto(f"{base}/console?lang=en")
    chromium.sign_in(page, "li.na", "grid-pass", tap=True)
    page.wait_for_url(f"{base}/console/field")  # a field role lands on the phone view
    page.goto(f"{base}/console/supervision?lang=en")
    card = page.locator("article.sup-order[data-state=open]").first
    assert card.locator(".sup-state").inner_text().strip() == "○ Open"
    assert _overflowing(page) == []
    shoot(page, tmp_path, "supervision-phone-en-open")
    answer = card.locator("textarea[name=answer]")
    box = card.locator("form.sup-answer-form button").bounding_box()
    assert box is not None and box["height"] >= 44 and box["x"] + box["width"] <= chromium.PHONE_WIDTH
    answer.tap()
    answer.fill("Pumped out, drain cleared")
    card.locator("form.sup-answer-form button").tap()
    page.wait_for_url(f"{base}/console/supervision?*done=answered")
    assert "Answer sent" in page.locator("#supervision-done").inner_text()
    done = page.locator("article.sup-order[data-state=answered]").first
    assert done.locator(".sup-state").inner_text().strip() == "✓ Answered"
    assert "Pumped out, drain cleared" in done.inner_text() and "li.na" in done.inner_text()
    assert _overflowing(page) == []
    shoot(page, tmp_path, "supervision-phone-en-answered")
    # Back in Chinese on the phone: the same order, answered, in words of the other language.
    page.goto(f"{base}/console/supervision?lang=zh")
    assert (
        page.locator("article.sup-order[data-state=answered] .sup-state").first.inner_text().strip()
        == "✓ 已答复"
    )
    assert _overflowing(page) == []
    phone.close()
    assert problems == []
