"""The console's supervision page and the case page's issue form, over the generated month in two
towns: who sees the link and the page, the states as words with a shape, the 通报, the issue form
refusing a bad order while keeping what was typed, and an answer — in Chinese and English, on SQLite
and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.console.i18n_supervision import SUPERVISION_TEXT
from cases.policy import CasePolicy
from common.db import make_engine
from tests.api.conftest import console_login
from tests.api.two_towns import TOWN_A, Seeded
from tests.cases.kpi_month import generate_month

ZH, EN = SUPERVISION_TEXT["zh"], SUPERVISION_TEXT["en"]
CST = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def month(towns: Seeded) -> dict[int, int]:
    db = make_engine(towns.settings.database_url)
    try:
        return generate_month(db, CasePolicy.load(towns.settings.config_dir))
    finally:
        db.dispose()


@pytest.fixture
def signed_in(towns_api: TestClient, month: dict[int, int]) -> Iterator[TestClient]:
    yield towns_api
    towns_api.cookies.clear()


def _as(client: TestClient, who: str) -> str:
    """Sign ``who`` in; returns the session's CSRF token."""
    client.cookies.clear()
    assert console_login(client, who, "pw-" + who).status_code == 200
    page = client.get("/console?lang=zh").text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_link_and_the_page_are_for_the_roles_that_read_orders(signed_in: TestClient) -> None:
    for who, sees in (
        ("admin", True),
        ("town_operator", True),
        ("grid_worker", True),
        ("building_head", False),
    ):
        _as(signed_in, who)
        queue = signed_in.get("/console").text
        assert ('id="nav-supervision"' in queue) is sees, who
        page = signed_in.get("/console/supervision")
        assert page.status_code == (200 if sees else 403), who
        if not sees:
            assert ZH["sup_forbidden"] in page.text and "supervision-orders" not in page.text


def test_the_months_orders_and_notice_in_both_languages(signed_in: TestClient, month: dict[int, int]) -> None:
    _as(signed_in, "admin")
    zh = signed_in.get("/console/supervision", params={"month": "2026-11", "lang": "zh"}).text
    counts = re.search(
        r'id="supervision-counts"[^>]*data-open="(\d+)" data-answered="(\d+)" data-overdue="(\d+)"', zh
    )
    assert counts is not None and counts.groups() == ("0", "0", "4")
    orders = re.findall(
        r'class="panel sup-order" data-order-id="\d+" data-state="(\w+)" data-unit="([\w-]+)"', zh
    )
    assert sorted(orders) == sorted([("overdue", "enforcement")] + [("overdue", TOWN_A)] * 3)
    text = _text(zh)
    # A state is a word with a shape beside its colour; a unit and a stage by name, never an id.
    assert f"▲ {ZH['sup_state_overdue']}" in text and "区综合行政执法局" in text and "越河街道" in text
    assert ZH["sup_kind_auto"] in text and "环节超时：" in text
    notices = zh.split('id="supervision-notices"', 1)[1]
    yuehe = notices.split(f'data-unit="{TOWN_A}"', 1)[1].split("</div>", 1)[0]
    assert 'data-kind="overdue" data-count="2"' in yuehe and 'data-kind="returned" data-count="1"' in yuehe
    assert f"#{month[7]}" in yuehe and f"#{month[11]}" in yuehe and f"#{month[5]}" in yuehe
    for raw in ("supervise_manual", "system:sla", "fire_lane_blocked", ">overdue<", "None"):
        assert raw not in text, raw
    en = _text(signed_in.get("/console/supervision", params={"month": "2026-11", "lang": "en"}).text)
    assert f"▲ {EN['sup_state_overdue']}" in en and EN["sup_notices"] in en and ZH["sup_notices"] not in en
    # Filters narrow the list; a malformed month is said, not a failure.
    only_open = signed_in.get("/console/supervision", params={"month": "2026-11", "state": "open"}).text
    assert 'data-state="overdue" data-unit' not in only_open and 'id="supervision-none"' in only_open
    bad = signed_in.get("/console/supervision", params={"month": "2026-13", "lang": "zh"})
    assert bad.status_code == 200 and ZH["sup_err_month"] in bad.text


def test_issue_from_the_case_page_and_answer_on_the_supervision_page(
    signed_in: TestClient, month: dict[int, int]
) -> None:
    case = month[24]  # handling in grid g-north of town A
    # The grid worker sees no issue form; the town operator does, the holding grid first.
    _as(signed_in, "grid_worker")
    assert 'data-action="supervise"' not in signed_in.get(f"/console/cases/{case}").text
    csrf = _as(signed_in, "town_operator")
    page = signed_in.get(f"/console/cases/{case}?lang=zh").text
    assert 'data-action="supervise"' in page and ZH["sup_issue_title"] in page
    targets = re.findall(
        r'<option value="([\w-]+)">', page.split('data-action="supervise"', 1)[1].split("</form>")[0]
    )
    assert targets == ["g-north"]  # a town supervises its grids only
    # A past deadline is refused, the field named, and what was typed is kept.
    past = (datetime.now(CST) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    form = {"csrf": csrf, "reason": "通道仍被占用", "deadline": past, "target_unit": "g-north"}
    refused = signed_in.post(f"/console/cases/{case}/supervision", data=form, follow_redirects=False)
    assert refused.status_code == 422 and 'data-error="sup_err_deadline"' in refused.text
    assert "通道仍被占用" in refused.text and past in refused.text
    empty = signed_in.post(
        f"/console/cases/{case}/supervision",
        data=form | {"reason": " ", "deadline": "x"},
        follow_redirects=False,
    )
    assert empty.status_code == 422 and 'data-error="sup_err_' in empty.text
    soon = (datetime.now(CST) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    issued = signed_in.post(
        f"/console/cases/{case}/supervision", data=form | {"deadline": soon}, follow_redirects=False
    )
    assert issued.status_code == 303 and issued.headers["location"].startswith(f"/console/cases/{case}")
    timeline = signed_in.get(f"/console/cases/{case}?lang=zh").text.split('id="timeline"', 1)[1]
    assert "人工督办" in timeline and "通道仍被占用" in timeline
    # The grid worker finds it open, with a shape and a word, and answers it.
    csrf = _as(signed_in, "grid_worker")
    listing = signed_in.get("/console/supervision", params={"lang": "zh"}).text
    card = listing.split('data-state="open" data-unit="g-north"', 1)
    assert len(card) == 2 and f"○ {ZH['sup_state_open']}" in _text(card[1].split("</article>")[0])
    order_id = re.findall(r'data-order-id="(\d+)" data-state="open" data-unit="g-north"', listing)[0]
    blank = signed_in.post(
        f"/console/supervision/{order_id}/answer", data={"csrf": csrf, "answer": " "}, follow_redirects=False
    )
    assert blank.status_code == 422 and 'data-error="sup_err_answer"' in blank.text
    answered = signed_in.post(
        f"/console/supervision/{order_id}/answer",
        data={"csrf": csrf, "answer": "已清理", "back": "state=open"},
        follow_redirects=False,
    )
    assert answered.status_code == 303 and "done=answered" in answered.headers["location"]
    after = signed_in.get("/console/supervision", params={"state": "answered", "done": "answered"}).text
    assert (
        'id="supervision-done"' in after
        and "已清理" in after
        and f"✓ {ZH['sup_state_answered']}" in _text(after)
    )
    # Without the session's CSRF token nothing is written.
    forged = signed_in.post(f"/console/supervision/{order_id}/answer", data={"csrf": "x", "answer": "y"})
    assert forged.status_code == 403
