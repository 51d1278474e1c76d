"""Photos in the case page's timeline: a worker's feedback photos (the first of the case: before) and the
return visit's (after), uploaded through the attachments API and carried by the events' payload
(``attachments: [ids]``), shown as thumbnails linking to the full photo, labelled in both languages; the
thumbnail is served to the operator and is a 404 for a user of another grid. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.settings import ApiSettings
from cases.actions import CaseFlow
from cases.models import Case
from cases.policy import CasePolicy
from common.db import make_engine
from tests.api.conftest import (  # noqa: F401 - fixtures: the app on each relational store, accounts
    api_database_url,
    auth,
    client,
    console_login,
    login,
    token,
)
from tests.factories import open_flooding_cases
from tests.platform import CONFIG_DIR

POLICY = CasePolicy.load(CONFIG_DIR)


@pytest.fixture
def settings(tmp_path: Path, api_database_url: str) -> ApiSettings:  # noqa: F811 - ours: photos in tmp
    return ApiSettings(
        database_url=api_database_url,
        series_url=f"sqlite:///{tmp_path}/series.db",
        config_dir=CONFIG_DIR,
        mqtt_port=1,
        attachments_dir=tmp_path / "attachments",
    )


def photo(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(out, "JPEG")
    return out.getvalue()


def upload(client: TestClient, token: str, case_id: int, colour: tuple[int, int, int]) -> int:  # noqa: F811
    answer = client.post(
        f"/api/v1/cases/{case_id}/attachments",
        headers=auth(token),
        files={"file": ("site.jpg", photo(colour), "image/jpeg")},
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    ident = body["id"] if "id" in body else body["items"][0]["id"]
    assert isinstance(ident, int)
    return ident


def photo_cells(html: str) -> list[tuple[str, str, list[str]]]:
    """(data-when, label, [attachment ids]) of each photo group in the timeline, in order."""
    found = []
    for when, label, links in re.findall(
        r'<div class="case-photos" data-when="(\w+)"><span class="photo-label">([^<]+)</span>(.*?)</div>',
        html,
        re.S,
    ):
        ids = re.findall(r'<a href="/attachments/(\d+)"[^>]*><img src="/attachments/\1\?size=thumb"', links)
        found.append((when, label, ids))
    return found


def test_feedback_and_visit_photos_show_before_and_after(
    client: TestClient,  # noqa: F811
    token: str,  # noqa: F811
    login: Callable[..., str],  # noqa: F811
    settings: ApiSettings,
) -> None:
    open_flooding_cases(settings.database_url, [datetime.now(UTC)])
    db = make_engine(settings.database_url)
    with Session(db) as session:
        case_id = session.scalars(select(Case.id)).one()
    flow = CaseFlow(db, POLICY)
    for action, params in (("accept", {}), ("verify", {}), ("assign", {"assignee": "li.na"})):
        flow.act(case_id, action, actor="op", params=params)
    worker = login("li.na", "grid_worker", community="zhuganxiang", grid="g-north")
    stranger = login("li.south", "grid_worker", community="zhuganxiang", grid="g-south")
    assert client.post(
        f"/api/v1/cases/{case_id}/actions", headers=auth(worker), json={"action": "sign"}
    ).is_success
    before = [upload(client, worker, case_id, (200, 40, 40)), upload(client, worker, case_id, (40, 40, 200))]
    fed = client.post(
        f"/api/v1/cases/{case_id}/actions",
        headers=auth(worker),
        json={"action": "feedback", "note": "已清理", "params": {"attachments": before}},
    )
    assert fed.status_code == 200, fed.text
    flow.act(case_id, "check", actor="op")
    flow.act(case_id, "pass", actor="op")
    after = upload(client, token, case_id, (40, 200, 40))
    visited = client.post(
        f"/api/v1/cases/{case_id}/actions",
        headers=auth(token),
        json={"action": "visit", "params": {"outcome": "satisfied", "attachments": [after]}},
    )
    assert visited.status_code == 200, visited.text
    db.dispose()

    assert console_login(client).status_code in (200, 303)
    zh = client.get(f"/console/cases/{case_id}?lang=zh").text
    assert photo_cells(zh) == [
        ("before", "处置前", [str(i) for i in before]),
        ("after", "处置后", [str(after)]),
    ]
    en = client.get(f"/console/cases/{case_id}?lang=en").text
    assert [(w, label) for w, label, _ in photo_cells(en)] == [("before", "Before"), ("after", "After")]
    assert 'title="Open the full photo"' in en

    thumb = client.get(f"/attachments/{before[0]}?size=thumb")  # the operator's console session
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    full = client.get(f"/attachments/{before[0]}")
    assert full.status_code == 200 and len(full.content) > len(thumb.content)
    assert client.get(f"/attachments/{before[0]}?size=thumb", headers=auth(stranger)).status_code == 404
