"""The grid worker's phone view in a real headless Chromium (Debian's) at 360×740 with touch, against the
real API process on SQLite and a real PostgreSQL: a case assigned while the list is open appears within
5 s; the worker signs for a case, goes offline, sends feedback with a photo, comes back online, and the
case holds exactly one feedback event with that photo — also when the answer to the first send was
lost and the queued item is sent again. A refused item is shown in words and kept until discarded.
The page fits the phone in both languages, and its transfer stays under 150 kB."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import accounts
from cases.attachment_models import Attachment
from cases.models import Case, CaseEvent
from common.db import make_engine
from tests.e2e import browser as chromium
from tests.e2e.browser import DESKTOP
from tests.factories import open_flooding_cases
from tests.platform import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
WORKER, WORKER_PASSWORD = "li.na", "grid-pass-for-tests"
PAGE_BUDGET = 150_000  # bytes on the wire: HTML + CSS + JS of the phone view


@dataclass(frozen=True)
class Live:
    base: str
    database_url: str
    token: str  # a district operator's, to assign cases as the town would


@pytest.fixture(params=chromium.DATABASES)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    database_url = chromium.fresh_database(request, tmp_path)
    db = make_engine(database_url)
    accounts.create_user(
        db, WORKER, WORKER_PASSWORD, "grid_worker", "李娜", community="zhuganxiang", grid="g-north"
    )
    token = accounts.issue_token(db, accounts.create_user(db, "op", "op-pass", "district_operator"))
    db.dispose()
    open_flooding_cases(database_url, [datetime.now(UTC)])  # a flood in g-north (wl-01)
    env = chromium.api_env(database_url, tmp_path, YIWANG_ATTACHMENTS_DIR=str(tmp_path / "attachments"))
    with chromium.api_process(tmp_path, env) as api:
        yield Live(api.base, database_url, token)


def operator(live: Live, method: str, path: str, json: object = None) -> httpx.Response:
    """A request of the district operator's (the town's side of the work)."""
    headers = {"Authorization": f"Bearer {live.token}"}
    answer = httpx.request(method, f"{live.base}{path}", headers=headers, json=json)
    assert answer.is_success, answer.text
    return answer


def assign(live: Live, case_id: int) -> None:
    for action, params in (("accept", {}), ("verify", {}), ("assign", {"assignee": WORKER})):
        operator(live, "POST", f"/api/v1/cases/{case_id}/actions", json={"action": action, "params": params})


def assigned_flood(live: Live) -> int:
    """The seeded flood, assigned to the worker; its id."""
    db = make_engine(live.database_url)
    with Session(db) as session:
        flood = session.scalars(select(Case.id)).one()
    db.dispose()
    assign(live, flood)
    return flood


def phone_sign_in(browser: Browser, live: Live, lang: str = "zh") -> tuple[BrowserContext, Page]:
    context = chromium.phone(browser)
    page = context.new_page()
    page.goto(f"{live.base}/console/login?lang={lang}")
    chromium.sign_in(page, WORKER, WORKER_PASSWORD)
    page.wait_for_url(f"{live.base}/console/field")  # a field role lands on the phone view
    return context, page


def fits(page: Page) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"sideways scrolling on {page.url}: {width}"


def feedback_events(live: Live, case_id: int) -> list[CaseEvent]:
    db = make_engine(live.database_url)
    with Session(db) as session:
        found = list(
            session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.action == "feedback")
            )
        )
    db.dispose()
    return found


def photo(tmp_path: Path) -> Path:
    """A JPEG as a phone camera makes one (size and content of its own, nothing special)."""
    image = Image.new("RGB", (1200, 900), (90, 120, 160))
    draw = ImageDraw.Draw(image)
    for x in range(0, 1200, 60):
        draw.line([(x, 0), (1200 - x, 900)], fill=(230, 200, 40), width=7)
    path = tmp_path / "drain.jpg"
    image.save(path, "JPEG", quality=88)
    return path


def test_the_worker_signs_goes_offline_sends_feedback_with_a_photo_and_it_lands_once(
    browser: Browser,
    live: Live,
    tmp_path: Path,
) -> None:
    flood = assigned_flood(live)
    context, page = phone_sign_in(browser, live)
    expect(page.locator(f"#tasks li[data-case-id='{flood}']")).to_be_visible()
    fits(page)
    # A case assigned while the list is open shows up within 5 s, without a reload.
    reported = operator(
        live,
        "POST",
        "/api/v1/cases",
        json={
            "community": "zhuganxiang",
            "grid": "g-north",
            "category": "fire_lane_blocked",
            "description": "消防通道被占",
        },
    ).json()["id"]
    assign(live, reported)
    expect(page.locator(f"#tasks li[data-case-id='{reported}']")).to_be_visible(timeout=5_000)
    page.locator(f"#tasks li[data-case-id='{flood}'] a.task-open").tap()
    page.wait_for_url(f"**/console/field/cases/{flood}")
    fits(page)
    expect(page.locator("#case-place a.map-geo")).to_have_attribute(
        "href", re.compile(r"^geo:35\.\d+,116\.\d+$")
    )
    page.locator("form[data-action=sign] button").tap()
    expect(page.locator("#case-state")).to_have_attribute("data-state", "HANDLING", timeout=10_000)

    context.set_offline(True)
    form = page.locator("form[data-action=feedback]")
    form.locator("textarea[name=note]").fill("积水已排净，雨水篦子已清理")
    form.locator("input[type=file]").set_input_files(str(photo(tmp_path)))
    form.locator("button").tap()
    expect(page.locator("#outbox-status")).to_contain_text("1 项待发送")
    expect(page.locator("#outbox-status")).to_contain_text("当前离线")
    assert feedback_events(live, flood) == []  # nothing left the phone
    # Without a signal the page still opens (the service worker's shell), and the queue is still there.
    page.reload()
    expect(page.locator("#case-title")).to_be_visible()
    expect(page.locator("#outbox-status")).to_contain_text("1 项待发送")

    # Back online, the first answer is lost on the way (the server applied it): the item stays queued.
    lost: list[int] = []

    def lose_the_answer(route: Route) -> None:
        answer = route.fetch()
        lost.append(answer.status)
        route.abort("connectionreset")

    page.route(f"**/console/field/cases/{flood}/actions", lose_the_answer)
    context.set_offline(False)
    for _ in range(200):  # Playwright runs the route handler only while the test waits in Playwright
        if lost:
            break
        page.wait_for_timeout(100)
    assert lost == [200]
    expect(page.locator("#outbox-status")).to_contain_text("1 项待发送")
    assert len(feedback_events(live, flood)) == 1
    # The retry carries the same Idempotency-Key: answered from the first result, not applied again.
    page.unroute(f"**/console/field/cases/{flood}/actions")
    context.set_offline(True)
    context.set_offline(False)  # the browser's "online" event sends the outbox again
    expect(page.locator("#outbox")).to_be_hidden(timeout=20_000)
    page.wait_for_load_state()
    events = feedback_events(live, flood)
    assert len(events) == 1, [e.data for e in events]
    ids = events[0].data["attachments"]
    assert len(ids) == 1
    db = make_engine(live.database_url)
    with Session(db) as session:
        stored = session.get(Attachment, ids[0])
        assert stored is not None and stored.case_id == flood and stored.uploaded_by == WORKER
    db.dispose()
    shown = page.locator(f"#timeline img[data-attachment='{ids[0]}']")
    expect(shown).to_be_visible()
    wait_for(lambda: shown.evaluate("img => img.complete && img.naturalWidth > 0"), 10, "the thumbnail")
    fits(page)
    context.close()


def test_a_refused_item_is_shown_in_words_and_kept_until_discarded(
    browser: Browser,
    live: Live,
) -> None:
    flood = assigned_flood(live)
    context, page = phone_sign_in(browser, live, "en")
    page.goto(f"{live.base}/console/field/cases/{flood}")
    # Someone signs for the case while this page still offers signing: the phone's sign is refused.
    context.set_offline(True)
    page.locator("form[data-action=sign] button").tap()
    expect(page.locator("#outbox-status")).to_contain_text("1 waiting to be sent")
    operator(live, "POST", f"/api/v1/cases/{flood}/actions", json={"action": "sign"})
    context.set_offline(False)
    failed = page.locator("#outbox-failed li")
    expect(failed).to_contain_text("Someone else changed the case first", timeout=20_000)
    expect(failed).to_contain_text(f"Case {flood}: Sign for it")
    expect(page.locator("#outbox-status")).to_have_text("")
    failed.locator("button").tap()
    expect(page.locator("#outbox")).to_be_hidden()
    fits(page)
    context.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_phone_view_fits_and_stays_under_its_transfer_budget(
    browser: Browser,
    live: Live,
    lang: str,
) -> None:
    context, page = phone_sign_in(browser, live, lang)
    fits(page)
    flood = page.locator("#tasks li").first.get_attribute("data-case-id")
    page.goto(f"{live.base}/console/field/cases/{flood}")
    fits(page)
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    context.close()
    desktop = browser.new_context(**DESKTOP)
    desktop.add_cookies([{"name": k, "value": v, "url": live.base} for k, v in cookies.items()])
    wide = desktop.new_page()
    wide.goto(f"{live.base}/console/field")
    expect(wide.locator("#tasks li").first).to_be_visible()
    desktop.close()
    # What the phone downloads, through the real server, asking for gzip.
    with httpx.Client(base_url=live.base, cookies=cookies, headers={"Accept-Encoding": "gzip"}) as client:
        html = client.get(f"/console/field/cases/{flood}")
        assets = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', html.text)
        assert {"/static/field.css", "/static/field.js"} <= set(assets)
        answers = [html, client.get("/console/field"), *(client.get(a) for a in assets)]
        wire = sum(a.num_bytes_downloaded for a in answers)
        raw = sum(len(a.content) for a in answers)
        assert all(a.status_code == 200 for a in answers)
    print(
        f"phone view transfer ({lang}): {wire} B on the wire, {raw} B uncompressed, gzip≈{len(gzip.compress(b''.join(a.content for a in answers)))} B"
    )
    assert wire <= PAGE_BUDGET
