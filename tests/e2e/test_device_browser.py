"""The device page in a real headless Chromium: an operator changes the time range and the chart follows
(its request asks for the new window, and the axis labels change)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser

from series.factory import open_store
from series.store import Point
from tests.e2e.test_console_browser import console, shoot, sign_in  # noqa: F401 - the API process

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
TAGS = {"community": "zhuganxiang", "gateway": "gw-01", "device": "wl-01", "grid": "g-north"}


def test_operator_changes_the_time_range_and_the_chart_follows(
    browser: Browser,
    console: tuple[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    base, _ = console
    now = int(datetime.now(UTC).timestamp() * 1000)
    store = open_store(f"sqlite:///{tmp_path}/series.db")  # the API process's series store
    store.write(
        [Point("water.level", TAGS, {"level_cm": float(i % 30)}, now - 900_000 * i) for i in range(700)]
    )
    store.close()
    page = sign_in(browser, base, "wang.wei", "s3cret-pass")
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{base}/console/devices/zhuganxiang/wl-01")
    chart = page.locator(".chart-slot svg").first
    day_labels = chart.locator(".x-label").all_text_contents()
    assert day_labels and all(len(label) == 5 and label[2] == ":" for label in day_labels)  # hours
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scroll on a phone
    shoot(page, tmp_path, "device-24h")

    with page.expect_response(lambda r: "/aggregate.svg" in r.url) as caught:
        page.click("#ranges a[data-range='7d']")
    query = parse_qs(urlsplit(caught.value.url).query)
    assert caught.value.status == 200
    assert int(query["until"][0]) - int(query["since"][0]) == 7 * 86_400_000
    page.wait_for_function(
        "() => document.querySelector('#ranges a[data-range=\"7d\"]').hasAttribute('aria-current')"
    )
    week_labels = page.locator(".chart-slot svg").first.locator(".x-label").all_text_contents()
    assert week_labels != day_labels and all(label[2] == "-" for label in week_labels)  # month-day
    assert page.locator(".chart-slot svg").first.get_attribute("data-window") == "1800"
    assert "range=7d" in page.url
    shoot(page, tmp_path, "device-7d")
