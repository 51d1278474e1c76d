"""Dead letters over the API: grouped by gateway and reason, payloads cut and given as text, marked for
replay (bounded) by id or by filter; for district staff only. Ingest's side of the replay is
tests/ingest/test_replay.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api import accounts
from api.routes import deadletters as api_view
from api.settings import ApiSettings
from common.db import make_engine
from ingest.deadletters import DeadLetter, DeadLetterStore, dead_letters
from ingest.metrics import reason_class
from tests.api.conftest import auth

GW1 = "yiwang/v1/zhuganxiang/gw-01/telemetry"
GW2 = "yiwang/v1/zhuganxiang/gw-02/event"
UNKNOWN = "readings[0].device: unknown device 'wl-77' of gateway gw-01"


def _letters(db: Engine) -> DeadLetterStore:
    store = DeadLetterStore(db)
    store.add_many(
        [DeadLetter(GW1, UNKNOWN, b'{"seq": %d}' % n) for n in range(3)]
        + [
            DeadLetter(GW2, "not JSON: Expecting value", b"<script>alert(1)</script>" + b"x" * 5000),
            DeadLetter("not/a/topic", "topic: ingest takes telemetry and events", b"\xff\xfe"),
        ]
    )
    return store


@pytest.fixture
def db(settings: ApiSettings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


def test_the_api_view_matches_ingests_table() -> None:
    assert {c.name for c in api_view.dead_letters.c} == {c.name for c in dead_letters.c}


@pytest.mark.parametrize(
    "reason",
    [
        UNKNOWN,
        "retained message: telemetry and events are never retained",
        "events[0].kind: unknown event kind 'x'",
        "readings[0].device: retired device 'wl-03'",
        "rejected by the time-series store: field type conflict",
        "topic: ingest takes telemetry and events",
        "not JSON: Expecting value",
        "readings[0].values.level_cm: not a number",
    ],
)
def test_reason_classes_are_ingests(reason: str, client: TestClient, db: Engine) -> None:
    DeadLetterStore(db).add_many([DeadLetter(GW1, reason, b"{}")])
    groups = api_view.dead_letter_groups(db, api_view.DeadLetterFilter())
    assert [g.reason_class for g in groups] == [reason_class(reason)]


def test_listed_by_gateway_and_reason_payloads_as_cut_text(
    client: TestClient, token: str, db: Engine
) -> None:
    _letters(db)
    page = client.get("/api/v1/dead-letters", headers=auth(token))
    assert page.status_code == 200
    body = page.json()
    groups = {
        (g["community"], g["gateway"], g["reason_class"]): (g["count"], g["marked"]) for g in body["groups"]
    }
    assert groups == {
        ("zhuganxiang", "gw-01", "unknown_device"): (3, 0),
        ("zhuganxiang", "gw-02", "bad_json"): (1, 0),
        ("", "", "bad_topic"): (1, 0),
    }
    big = next(x for x in body["letters"] if x["gateway"] == "gw-02")
    assert (
        big["payload"].startswith("<script>") and len(big["payload"].encode()) == api_view.SHOWN_PAYLOAD_BYTES
    )
    assert big["payload_cut"] and big["payload_bytes"] == 5025
    odd = next(x for x in body["letters"] if x["topic"] == "not/a/topic")
    assert odd["payload"] == "\ufffd\ufffd"  # bytes that are no text are shown replaced, never raw
    only = client.get("/api/v1/dead-letters", params={"gateway": "gw-01"}, headers=auth(token)).json()
    assert {x["gateway"] for x in only["letters"]} == {"gw-01"} and len(only["letters"]) == 3
    by_reason = client.get("/api/v1/dead-letters", params={"reason": "bad_json"}, headers=auth(token)).json()
    assert [x["gateway"] for x in by_reason["letters"]] == ["gw-02"]
    paged = client.get("/api/v1/dead-letters", params={"limit": 2}, headers=auth(token)).json()
    rest = client.get(
        "/api/v1/dead-letters", params={"limit": 2, "before": paged["next_before"]}, headers=auth(token)
    )
    assert len(paged["letters"]) == 2 and len(rest.json()["letters"]) == 2
    assert (
        client.get("/api/v1/dead-letters", params={"gateway": "gw_%"}, headers=auth(token)).status_code == 422
    )


def test_marked_for_replay_by_filter_or_ids_bounded(client: TestClient, token: str, db: Engine) -> None:
    _letters(db)
    marked = client.post(
        "/api/v1/dead-letters/replay",
        json={"gateway": "gw-01", "reason": "unknown_device", "limit": 2},
        headers=auth(token),
    )
    assert marked.status_code == 202 and marked.json() == {"marked": 2}
    again = client.post("/api/v1/dead-letters/replay", json={"gateway": "gw-01"}, headers=auth(token))
    assert again.json() == {"marked": 1}  # marked letters are not counted twice
    with db.connect() as conn:
        rows = conn.execute(select(dead_letters.c.topic, dead_letters.c.replay_requested_at)).all()
    assert {t for t, at in rows if at is not None} == {GW1} and sum(at is not None for _, at in rows) == 3
    with db.connect() as conn:
        bad_id = conn.execute(
            select(dead_letters.c.id).where(dead_letters.c.topic == "not/a/topic")
        ).scalar_one()
    by_id = client.post("/api/v1/dead-letters/replay", json={"ids": [bad_id, 999999]}, headers=auth(token))
    assert by_id.json() == {"marked": 1}
    listed = client.get("/api/v1/dead-letters", headers=auth(token)).json()
    assert sorted(str(x["replay"]) for x in listed["letters"]) == ["None"] + ["marked"] * 4
    too_many = client.post(
        "/api/v1/dead-letters/replay", json={"ids": list(range(1, 1002))}, headers=auth(token)
    )
    assert too_many.status_code == 422
    assert client.post("/api/v1/dead-letters/replay", json={}, headers=auth(token)).status_code == 422
    assert (
        client.post(
            "/api/v1/dead-letters/replay", json={"limit": 1001, "gateway": "gw-01"}, headers=auth(token)
        ).status_code
        == 422
    )


def test_for_district_staff_only(client: TestClient, settings: ApiSettings, db: Engine) -> None:
    worker = accounts.create_user(db, "w", "pw", "grid_worker", community="zhuganxiang", grid="g-north")
    worker_token = accounts.issue_token(db, worker)
    assert client.get("/api/v1/dead-letters", headers=auth(worker_token)).status_code == 403
    refused = client.post(
        "/api/v1/dead-letters/replay", json={"gateway": "gw-01"}, headers=auth(worker_token)
    )
    assert refused.status_code == 403


# A SQLite file the app made creates no dead-letter table (ingest does); a migrated schema always has it.
@pytest.mark.parametrize("api_database_url", ["sqlite"], indirect=True)
def test_no_table_yet_is_no_letters(client: TestClient, token: str) -> None:
    assert client.get("/api/v1/dead-letters", headers=auth(token)).json()["groups"] == []
