"""The public page /report and the status page /report/{id} (#22), through the app: a resident files
with photos and follows the link; bad input is refused with its reason and stores nothing."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.routes.public_reports import PER_CLIENT_PER_HOUR, REPORT_MAX_BYTES
from api.settings import ApiSettings
from cases.attachment_models import Attachment
from cases.models import Case
from cases.notify import Channel, chat_text
from common.db import make_engine
from tests.api.conftest import auth, console_login
from tests.console.test_nothing_raw import problems, visible
from tests.factories import open_flooding_cases

SCRIPT = "<script>alert(1)</script> **bold** [link](http://evil.example)"


def jpeg(size: tuple[int, int] = (80, 60)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def page_channel(client: TestClient, token: str) -> dict[str, Any]:
    made = client.post(
        "/api/v1/channels",
        json={"name": "公众上报页", "communities": ["zhuganxiang"], "serves_page": True},
        headers=auth(token),
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def form_token(client: TestClient, lang: str = "zh") -> str:
    page = client.get(f"/report?lang={lang}")
    assert page.status_code == 200
    match = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def send(client: TestClient, photos: list[tuple[str, bytes, str]] | None = None, **fields: str) -> Response:
    data = {
        "form_token": form_token(client),
        "category": "fire_lane_blocked",
        "description": "消防通道被电动车堵住了",
        "building": "b-01",
        "phone": "139 0000 0000",
    } | fields
    files = [("photo", p) for p in (photos or [])]
    answer: Response = client.post("/report", data=data, files=files or None, follow_redirects=False)
    return answer


def counts(settings: ApiSettings) -> tuple[int, int]:
    db = make_engine(settings.database_url)
    try:
        with db.connect() as conn:
            cases = conn.execute(select(func.count()).select_from(Case)).scalar_one()
            photos = conn.execute(select(func.count()).select_from(Attachment)).scalar_one()
            return int(cases), int(photos)
    finally:
        db.dispose()


def test_without_a_page_channel_the_page_says_to_call(client: TestClient) -> None:
    page = client.get("/report?lang=en")
    assert page.status_code == 200 and "12345 hotline" in page.text and "<form" not in page.text


def test_the_form_names_categories_and_buildings_never_codes(
    client: TestClient, page_channel: dict[str, Any]
) -> None:
    for lang, category, building in (
        ("zh", "消防通道占用", "竹竿巷1号院"),
        ("en", "Fire lane blocked", "竹竿巷1号院"),
    ):
        page = client.get(f"/report?lang={lang}")
        shown = re.sub(r"<[^>]+>", " ", page.text)  # the words on screen, not the attribute values
        assert category in shown and building in shown and 'label="北区网格"' in page.text
        assert "fire_lane_blocked" not in shown and "b-01" not in shown and "g-north" not in shown
        assert 'accept="image/*" capture' in page.text and "<script>" not in page.text
        assert 'src="/static/report.js"' in page.text
    csp = client.get("/report").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_a_resident_files_with_photos_and_follows_the_link(
    client: TestClient, page_channel: dict[str, Any], settings: ApiSettings, token: str
) -> None:
    filed = send(client, photos=[("a.jpg", jpeg(), "image/jpeg"), ("b.png", jpeg((40, 40)), "image/png")])
    assert filed.status_code == 303, filed.text
    link = filed.headers["location"]
    match = re.fullmatch(r"/report/(\d+)\?t=([A-Za-z0-9_-]{20,})", link)
    assert match, link
    case_id = int(match.group(1))
    assert counts(settings) == (1, 2)
    status = client.get(link + "&lang=en")
    assert status.status_code == 200
    assert 'data-state="NEW"' in status.text and "New · Being handled" in status.text
    assert "消防通道被电动车堵住了" in status.text and "13900000000" not in status.text
    # The case carries the phone for the return visit, the building's grid, and where it came from.
    case = client.get(f"/api/v1/cases/{case_id}", headers=auth(token)).json()
    assert case["grid"] == "g-north" and case["source"] == "report"
    # The status link needs its token: another token, none, or another number is the same 404.
    assert client.get(f"/report/{case_id}").status_code == 404
    assert client.get(f"/report/{case_id}?t=wrong-token-value").status_code == 404
    assert client.get(f"/report/{case_id + 1}?t={match.group(2)}").status_code == 404
    # The operator closes the case: the resident's page says so, with the steps in words.
    for action, params in (
        ("accept", {}),
        ("verify", {}),
        ("assign", {"assignee": "li.na"}),
    ):
        done = client.post(
            f"/api/v1/cases/{case_id}/actions", json={"action": action, "params": params}, headers=auth(token)
        )
        assert done.status_code == 200, done.text
    shown = client.get(link + "&lang=zh").text
    assert "交办" in shown and "li.na" not in shown and "李娜" not in shown  # no staff names


def test_a_report_about_an_open_case_follows_that_case(
    client: TestClient, page_channel: dict[str, Any], settings: ApiSettings
) -> None:
    open_flooding_cases(settings.database_url, [datetime.now(UTC) - timedelta(minutes=5)])
    filed = send(client, category="flooding", building="b-01")
    assert filed.status_code == 303
    page = client.get(filed.headers["location"] + "&lang=en").text
    assert "Handled together with another report" in page and 'data-state="NEW"' in page


def test_html_and_markdown_stay_text_everywhere(
    client: TestClient, page_channel: dict[str, Any], settings: ApiSettings
) -> None:
    filed = send(client, description=SCRIPT)
    assert filed.status_code == 303
    case_id = int(filed.headers["location"].split("/")[2].split("?")[0])
    status = client.get(filed.headers["location"]).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; **bold**" in status and "<script>alert" not in status
    assert console_login(client).status_code in (200, 303)
    console = client.get(f"/console/cases/{case_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in console and "<script>alert" not in console
    assert "群众（公众上报页）" in console and ">public:" not in console  # who reported it, in words
    # A group-chat message never carries what a resident wrote.
    db = make_engine(settings.database_url)
    try:
        with Session(db) as session:
            case = session.get(Case, case_id)
            assert case is not None
            event = case.events[0]
            hook = Channel(id="g", kind="wecom", url="https://example.org/hook")
            text = chat_text(hook, event, case)
    finally:
        db.dispose()
    assert "<script>" not in text and "alert(1)" not in text and "](http" not in text


@pytest.mark.parametrize(
    ("photos", "code", "words"),
    [
        ([("a.pdf", b"%PDF-1.4 not an image at all", "image/jpeg")], 422, "这不是照片"),
        ([("t.jpg", jpeg()[:200], "image/jpeg")], 422, "图片已损坏"),
        ([(f"{n}.jpg", jpeg(), "image/jpeg") for n in range(4)], 413, "一次最多上传 3 张照片"),
        ([(f"{n}.jpg", jpeg((8, 8)), "image/jpeg") for n in range(50)], 413, "一次最多上传 3 张照片"),
    ],
    ids=["pdf", "truncated", "four", "fifty"],
)
def test_refused_photos_leave_no_case(
    client: TestClient,
    page_channel: dict[str, Any],
    settings: ApiSettings,
    photos: list[tuple[str, bytes, str]],
    code: int,
    words: str,
) -> None:
    refused = send(client, photos=[photos[0], *photos[1:]])
    assert refused.status_code == code, refused.text[:300]
    assert words in refused.text
    # A photo refused for its content: the resident's words come back in the form. (Too many files stop
    # the parser itself, before any field is read: nothing to give back.)
    assert ("消防通道被电动车堵住了" in refused.text) == (code == 422)
    assert counts(settings) == (0, 0)


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"description": "  "}, 422, "请描述问题"),
        ({"phone": "12ab"}, 422, "电话号码格式不正确"),
        ({"category": "ufo"}, 422, "请从列表中选择问题类别"),
        ({"building": ""}, 422, "请选择所在楼院"),
        ({"building": "", "lat": "39.9", "lon": "116.4"}, 422, "位置不在本社区范围内"),
        ({"building": "b-99"}, 422, "位置不在本社区范围内"),
        ({"form_token": "1.2.3"}, 403, "页面已过期"),
    ],
)
def test_bad_input_is_named_and_stores_nothing(
    client: TestClient,
    page_channel: dict[str, Any],
    settings: ApiSettings,
    fields: dict[str, Any],
    code: int,
    words: str,
) -> None:
    refused = send(client, **fields)
    assert refused.status_code == code and words in refused.text, refused.text[:400]
    assert counts(settings) == (0, 0)


def test_the_phones_position_goes_to_its_grid(
    client: TestClient, page_channel: dict[str, Any], token: str
) -> None:
    filed = send(client, building="", lat="35.4020", lon="116.5900")  # inside 南区网格
    assert filed.status_code == 303
    case_id = int(filed.headers["location"].split("/")[2].split("?")[0])
    assert client.get(f"/api/v1/cases/{case_id}", headers=auth(token)).json()["grid"] == "g-south"


def test_a_post_from_another_site_is_refused(client: TestClient, page_channel: dict[str, Any]) -> None:
    data = {"form_token": form_token(client), "category": "flooding", "description": "x", "building": "b-01"}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        forged = client.post("/report", data=data, headers=headers)
        assert forged.status_code == 403 and "页面已过期" in forged.text


def test_a_body_too_large_is_refused_before_parsing(client: TestClient, page_channel: dict[str, Any]) -> None:
    huge = client.post(
        "/report",
        content=b"x" * 64,
        headers={
            "Content-Type": "multipart/form-data; boundary=b",
            "Content-Length": str(REPORT_MAX_BYTES + 1),
        },
    )
    assert huge.status_code == 413 and "request body too large" in huge.text


def test_a_flood_from_one_client_gets_429(
    client: TestClient, page_channel: dict[str, Any], settings: ApiSettings
) -> None:
    for n in range(PER_CLIENT_PER_HOUR):
        assert send(client, description=f"第{n}次").status_code == 303
    flood = send(client)
    assert flood.status_code == 429 and "提交太频繁" in flood.text
    assert 1 <= int(flood.headers["Retry-After"]) <= 3600
    assert counts(settings)[0] == PER_CLIENT_PER_HOUR


def test_both_pages_show_words_not_codes_in_both_languages(
    client: TestClient, page_channel: dict[str, Any], token: str
) -> None:
    filed = send(client, description="楼道里堆满杂物")
    case_id = int(filed.headers["location"].split("/")[2].split("?")[0])
    client.post(f"/api/v1/cases/{case_id}/actions", json={"action": "accept"}, headers=auth(token))
    for url in ("/report", filed.headers["location"]):
        for lang in ("zh", "en"):
            answer = client.get(url + ("&" if "?" in url else "?") + f"lang={lang}")
            assert f'lang="{"zh-CN" if lang == "zh" else "en"}"' in answer.text
            chunks, _ = visible(answer.text)
            assert chunks and not problems(chunks, lang, ("楼道里堆满杂物",)), problems(chunks, lang)
    missing = client.get(f"/report/{case_id}?t=not-this-one&lang=en")
    assert missing.status_code == 404 and "No report with this number" in missing.text
    # The form asks for the phone's position and camera; nothing else of the app's gets them.
    assert "geolocation=(self)" in client.get("/report").headers["permissions-policy"]
    assert "geolocation=()" in client.get("/console/login").headers["permissions-policy"]


def test_a_photo_store_that_fails_keeps_no_case_and_gives_the_form_back(
    client: TestClient, page_channel: dict[str, Any], settings: ApiSettings
) -> None:
    settings.attachments_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.attachments_dir.write_bytes(b"")  # the store's directory is a file: every write fails

    refused = send(client, photos=[("a.jpg", jpeg(), "image/jpeg")])

    assert refused.status_code == 503, refused.text[:300]
    assert "照片暂时无法保存" in refused.text and "消防通道被电动车堵住了" in refused.text
    assert counts(settings) == (0, 0)  # the case went with its photo: a report is kept whole or not at all
    settings.attachments_dir.unlink()
    assert send(client, photos=[("a.jpg", jpeg(), "image/jpeg")]).status_code == 303
    assert counts(settings) == (1, 1)
