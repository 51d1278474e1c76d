"""HTML and Markdown a resident typed are shown as text in notification messages: on WeCom and DingTalk
(never formatting, linking or @-mentioning) and in the bell (the words exactly as typed, for the page
to show as text: tests/e2e/test_visits_browser.py checks the page). One case's assignment goes through
the same outbox sweep to a real HTTP receiver on loopback and to the in-app rows, on SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.settings import ApiSettings
from cases.inapp import InAppSink
from cases.notify import Channel, Outbox
from cases.policy import CasePolicy
from common.db import make_engine
from tests.api.conftest import auth
from tests.cases.webhook import Receiver

MARKUP = "<b>粗体</b> **加粗** [点我](http://evil.example) <@all> @13900000000 # 标题"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_markup_in_a_case_is_text_in_every_message(
    client: TestClient, token: str, login: Callable[..., str], settings: ApiSettings, receiver: Receiver
) -> None:
    worker = login("li.na", "grid_worker", community="zhuganxiang", grid="g-north")
    report = {
        "community": "zhuganxiang",
        "grid": "g-north",
        "category": "fire_lane_blocked",
        "description": MARKUP,
        "location": MARKUP,  # a reported case's title is its category and location
        "reporter_phone": "13800000000",
    }
    case_id = client.post("/api/v1/cases", json=report, headers=auth(token)).json()["id"]
    for action, params in (("accept", {}), ("verify", {}), ("assign", {"assignee": "li.na"})):
        done = client.post(
            f"/api/v1/cases/{case_id}/actions", headers=auth(token), json={"action": action, "params": params}
        )
        assert done.status_code == 200, done.text

    db = make_engine(settings.database_url)
    policy = CasePolicy.load(settings.config_dir, db)
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    channels = [
        Channel(id="wecom", kind="wecom", url=url, roles=["grid_worker"]),
        Channel(id="dingtalk", kind="dingtalk", url=url, roles=["grid_worker"]),
        Channel(id="feed", kind="webhook", url=url, actions=["assign"]),
    ]
    outbox = Outbox(
        db,
        channels,
        subscriptions={"grid_worker": ["assign"]},
        organisation=lambda: policy.organisation,
        inapp=InAppSink(db, lambda: policy.organisation),
    )
    try:
        assert outbox.sweep() >= 4  # three channels and li.na's bell
        assert outbox.deliver() == 3
    finally:
        outbox.close()
        db.dispose()
    bodies: dict[str, dict[str, Any]] = {key.split(":")[0]: body for key, body in receiver.received}

    wecom = (
        bodies["wecom"]["markdown"]["content"]
        if "markdown" in bodies["wecom"]
        else bodies["wecom"]["text"]["content"]
    )
    dingtalk = bodies["dingtalk"]["markdown"]["text"]
    for text in (wecom, dingtalk):
        for active in ("<b>", "**", "](", "<@all>", "@13900000000", "http://evil", "粗体"):
            assert active not in text, (active, text)  # neither formatting nor the resident's words
        assert f"#{case_id}" in text
    # Our own JSON carries the title as a JSON string: data for the receiver, never markup of ours.
    assert bodies["feed"]["title"].endswith(MARKUP)

    # The bell: the words exactly as typed, as plain text (the page puts them in as text).
    items = client.get("/api/v1/notifications", headers=auth(worker), params={"lang": "en"}).json()["items"]
    [mine] = [i for i in items if i["case_id"] == case_id]
    assert mine["text"].endswith(f"消防通道占用：{MARKUP}"[:80])  # the title, shortened to 80 characters
    assert "<b>粗体</b>" in mine["text"] and "**加粗**" in mine["text"]
