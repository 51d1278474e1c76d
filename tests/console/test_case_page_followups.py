"""The case page shows what the field and the alarm desk did (#22, #23), through the app on SQLite and a
real PostgreSQL: a worker's pending request with approve / refuse for the case's approvers (and the
answer on the worker's phone); the acknowledgements of the case's alerts; the reporter's phone masked;
for a case awaiting its return visit, the visit page instead of a bare visit form (with "basically
satisfied" wherever an outcome is picked); a kept snapshot named in words. Every page read in both
languages shows no raw code. And the wall counts a case opened by hand by the channel it states."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import accounts
from api.settings import ApiSettings
from cases.actions import CaseFlow, Report
from cases.models import Case, CaseEvent
from cases.policy import CasePolicy
from cases.wall_figures import channel_of
from common.db import make_engine
from tests.api.conftest import (  # noqa: F401 - the app on SQLite and PostgreSQL, an operator's token
    api_database_url,
    auth,
    client,
    console_login,
    settings,
    token,
)
from tests.api.test_alarm_acknowledge import FLOOD, Flood
from tests.console.test_nothing_raw import problems, visible
from tests.platform import CONFIG_DIR

NORTH = {"community": "zhuganxiang", "grid": "g-north"}
PASSWORD = "a-password-for-tests"
# People's own words and names on the pages (shown as written, never a code).
TYPED = ("op", "boss")


def account(config: ApiSettings, username: str, role: str, **scope: str) -> str:
    """A console account (password ``PASSWORD``) and its API token."""
    db = make_engine(config.database_url)
    user = accounts.create_user(db, username, PASSWORD, role, **scope)
    bearer = accounts.issue_token(db, user)
    db.dispose()
    return bearer


def act(web: TestClient, bearer: str, case_id: int, action: str, note: str = "", **params: object) -> None:
    answer = web.post(
        f"/api/v1/cases/{case_id}/actions",
        json={"action": action, "params": params, "note": note},
        headers=auth(bearer),
    )
    assert answer.status_code == 200, answer.text


def report(
    web: TestClient, bearer: str, category: str = "fire_lane_blocked", phone: str | None = None
) -> int:
    body = {**NORTH, "category": category, "description": "消防通道被占", "reporter_phone": phone}
    answer = web.post("/api/v1/cases", json=body, headers=auth(bearer))
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def signed_in(web: TestClient, username: str, password: str = PASSWORD) -> None:
    web.cookies.clear()
    assert console_login(web, username, password).status_code == 200


def page_in(web: TestClient, path: str, lang: str) -> str:
    """The page in ``lang``, checked for raw codes on the way."""
    answer = web.get(f"{path}?lang={lang}")
    assert answer.status_code == 200, answer.text[:300]
    found = problems(visible(answer.text)[0], lang, TYPED)
    assert not found, found
    return str(answer.text)


def part(html: str, element_id: str) -> str:
    """The text of one part of a page (from its id to the end of that block)."""
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</div>", start)]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def version_of(html: str) -> str:
    found = re.search(r'name="expected_version" value="(\d+)"', html)
    assert found is not None
    return found.group(1)


def deadline_of(web: TestClient, bearer: str, case_id: int) -> datetime:
    return datetime.fromisoformat(
        web.get(f"/api/v1/cases/{case_id}", headers=auth(bearer)).json()["deadline"]
    )


def submit(web: TestClient, case_id: int, html: str, **form: str) -> Response:
    data = {"csrf": csrf_of(html), "expected_version": version_of(html), **form}
    answer: Response = web.post(f"/console/cases/{case_id}/actions", data=data, follow_redirects=False)
    return answer


def test_a_request_is_answered_on_the_case_page_and_the_answer_shows_on_the_phone(
    client: TestClient,  # noqa: F811
    token: str,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
) -> None:
    worker = account(settings, "li.na", "grid_worker", **NORTH)
    account(settings, "wang.wei", "town_operator", town="yuehe")
    case_id = report(client, token)
    act(client, token, case_id, "accept")
    act(client, token, case_id, "verify")
    act(client, token, case_id, "assign", assignee="li.na")
    act(client, worker, case_id, "sign")
    act(client, worker, case_id, "request_extension", "配件周五到", hours=24, reason="等待配件")
    before = deadline_of(client, token, case_id)

    # The phone says it waits, and offers no second request of the kind.
    signed_in(client, "li.na")
    phone = page_in(client, f"/console/field/cases/{case_id}", "zh")
    assert "申请延期已提交，等待审批" in phone and "延期 24 小时，理由：等待配件" in phone
    assert 'class="act" data-action="request_extension"' not in phone
    assert 'class="act" data-action="request_return"' in phone
    assert '<select name="reason" required><option value="not_my_grid">不属于本网格</option>' in phone
    # The worker's desktop page shows the request, and no way to answer it.
    mine = page_in(client, f"/console/cases/{case_id}", "en")
    assert "Extension requested" in part(mine, "requests") and "You cannot answer a request you made" in mine
    assert 'data-action="approve-request_extension"' not in mine

    signed_in(client, "wang.wei")
    for lang, words in (
        ("zh", ("待审批的申请", "李娜", "延期 24 小时", "批准", "驳回")),
        ("en", ("Approve", "Refuse")),
    ):
        html = page_in(client, f"/console/cases/{case_id}", lang)
        assert all(w in part(html, "requests") for w in words), (lang, part(html, "requests"))
        # Requests are answered in their panel, never through a bare form asking for codes.
        forms = part(html, "actions")
        assert 'data-action="refuse_request"' not in forms and 'data-action="request_extension"' not in forms
    approved = submit(client, case_id, html, action="extend", on_request="true", note="同意")
    assert approved.status_code == 303, approved.text[:500]
    assert deadline_of(client, token, case_id) > before
    after = page_in(client, f"/console/cases/{case_id}", "zh")
    assert 'id="requests"' not in after and "批准李娜的延期申请：延期 24 小时" in after
    again = submit(client, case_id, html, action="extend", on_request="true")
    assert again.status_code == 409  # a second click: the page says why, nothing is extended twice

    signed_in(client, "li.na")
    phone = page_in(client, f"/console/field/cases/{case_id}", "en")
    assert "Approved the extension 李娜 asked for: 24 more hours" in phone
    moved = deadline_of(client, token, case_id).astimezone(ZoneInfo(settings.display_timezone))
    shown = re.search(r'id="case-deadline"[^>]*>([^<]+)<', phone)
    assert shown is not None and shown.group(1).startswith(moved.strftime("%m-%d %H:%M")), shown
    act(client, worker, case_id, "request_return", "在隔壁", reason="not_my_grid")

    signed_in(client, "wang.wei")
    html = page_in(client, f"/console/cases/{case_id}", "en")
    assert "Because: Not my grid" in part(html, "requests")
    refused = submit(
        client, case_id, html, action="refuse_request", request="request_return", reason="就在本网格"
    )
    assert refused.status_code == 303, refused.text[:500]
    signed_in(client, "li.na")
    phone = page_in(client, f"/console/field/cases/{case_id}", "zh")
    assert "驳回李娜的申请退回，理由：就在本网格" in phone
    assert 'class="act" data-action="request_return"' in phone


def test_the_case_page_shows_acknowledgements_the_masked_phone_and_the_way_to_the_visit(
    client: TestClient,  # noqa: F811
    token: str,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
) -> None:
    worker = account(settings, "li.na", "grid_worker", **NORTH)
    account(settings, "boss", "admin")
    flood = Flood(settings)
    flood.level(0, 80)
    flood.db.dispose()
    alert = next(a for a in client.get("/api/v1/alerts", headers=auth(token)).json()["items"])
    assert alert["fingerprint"] == FLOOD
    acked = client.post(
        f"/api/v1/alerts/{quote(FLOOD, safe='')}/acknowledge",
        json={"note": "泵车已出发"},
        headers=auth(token),
    )
    assert acked.status_code == 201, acked.text
    signed_in(client, "op", "correct horse")
    for lang, status in (("zh", "告警中"), ("en", "firing")):
        html = page_in(client, f"/console/cases/{alert['case_id']}", lang)
        acks = part(html, "acks-panel")
        assert "泵车已出发" in acks and status in acks and ">op<" in acks, acks

    case_id = report(client, token, phone="13812345678")
    html = page_in(client, f"/console/cases/{case_id}", "zh")
    summary = part(html, "case-summary")
    assert "报告人电话" in summary and "138****5678" in summary and "13812345678" not in html

    for action in ("accept", "verify"):
        act(client, token, case_id, action)
    act(client, token, case_id, "assign", assignee="li.na")
    act(client, worker, case_id, "sign")
    act(client, worker, case_id, "feedback", "已清理")
    act(client, token, case_id, "check")
    act(client, token, case_id, "pass")
    # A visiting role goes to the visit page (where the number shows in full); no bare form here.
    html = page_in(client, f"/console/cases/{case_id}", "en")
    assert f'href="/console/visits/{case_id}"' in html and 'data-action="visit"' not in html
    assert "138****5678" in html and "13812345678" not in html
    # An admin may record a visit but does not make them: the form, with every outcome.
    signed_in(client, "boss")
    html = page_in(client, f"/console/cases/{case_id}", "zh")
    visit = html.split('data-action="visit"')[1].split("</form>")[0]
    assert '<option value="basically_satisfied">基本满意</option>' in visit and "/console/visits/" not in html


def test_a_kept_snapshot_is_named_on_every_page(
    client: TestClient,  # noqa: F811
    token: str,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
) -> None:
    account(settings, "li.na", "grid_worker", **NORTH)
    case_id = report(client, token)
    db = make_engine(settings.database_url)
    with Session(db) as session, session.begin():
        case = session.get(Case, case_id)
        assert case is not None
        session.add(
            CaseEvent(
                case=case,
                at=datetime.now(UTC),
                actor="op",
                action="snapshot_attached",
                from_state=case.state,
                to_state=case.state,
                note="",
                data={"attachments": []},
            )
        )
    db.dispose()
    signed_in(client, "op", "correct horse")
    assert "保存现场快照" in page_in(client, f"/console/cases/{case_id}", "zh")
    assert "Snapshot kept" in page_in(client, f"/console/cases/{case_id}", "en")
    signed_in(client, "li.na")
    assert "保存现场快照" in page_in(client, f"/console/field/cases/{case_id}", "zh")


def test_the_wall_counts_a_case_opened_by_hand_by_its_channel(
    client: TestClient,  # noqa: F811
    token: str,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
) -> None:
    db = make_engine(settings.database_url)
    flow = CaseFlow(db, CasePolicy.load(CONFIG_DIR))
    # Signed-in operators took all three: one a 12345 transfer, one a call, one without a channel.
    flow.report(Report(**NORTH, category="flooding", description="积水", channel="hotline"), actor="op")
    flow.report(Report(**NORTH, category="gas_leak", description="煤气味", channel="console"), actor="op")
    flow.report(Report(**NORTH, category="door_left_open", description="门没关"), actor="op")
    with Session(db) as session:
        assert len(session.scalars(select(Case.id)).all()) == 3
    db.dispose()
    signed_in(client, "op", "correct horse")
    figures = client.get("/console/wall/figures.json")
    assert figures.status_code == 200, figures.text
    assert figures.json()["intake"]["channels"] == {"sensor": 0, "hotline": 1, "console": 2, "residents": 0}
    # The stated channel comes before the source and the actor; an unknown one is not trusted.
    assert channel_of("stated:12345", "someone", lambda _: False) == "hotline"
    assert channel_of("stated:counter", "open311:x", lambda _: False) == "console"
    assert channel_of("report", "resident-app", lambda _: False) == "residents"
