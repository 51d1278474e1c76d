"""The console's oversight pages in both languages: the audit trail for admins and inspectors, dead
letters with their payloads escaped (never markup) and a replay button per gateway and reason."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api import accounts
from api.settings import ApiSettings
from common.db import make_engine
from ingest.deadletters import DeadLetter, DeadLetterStore, dead_letters
from tests.api.conftest import auth, console_login

TOPIC = "yiwang/v1/zhuganxiang/gw-01/telemetry"
SCRIPT = b'{"seq": 1, "readings": [{"device": "<script>alert(1)</script>"}]}'


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def test_dead_letters_page_escapes_payloads_and_replays_a_group(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    db = make_engine(settings.database_url)
    DeadLetterStore(db).add_many([DeadLetter(TOPIC, "unknown device '<script>'", SCRIPT)] * 2)
    assert console_login(client).status_code == 200
    zh = client.get("/console/dead-letters")
    assert zh.status_code == 200 and "死信" in zh.text and "未登记设备" in zh.text and "重放" in zh.text
    assert "<script>" not in zh.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in zh.text
    en = client.get("/console/dead-letters", params={"lang": "en"})
    assert "Dead letters" in en.text and "Unregistered device" in en.text and "Replay" in en.text
    assert "<script>" not in en.text
    replayed = client.post(
        "/console/dead-letters/replay",
        data={"csrf": _csrf(en.text), "gateway": "gw-01", "reason": "unknown_device"},
    )
    assert replayed.status_code == 200 and "2 letters marked for replay" in replayed.text
    with db.connect() as conn:
        marked = conn.execute(
            select(func.count()).where(dead_letters.c.replay_requested_at.is_not(None))
        ).scalar_one()
    assert marked == 2
    forged = client.post("/console/dead-letters/replay", data={"csrf": "x", "gateway": "gw-01"})
    assert forged.status_code == 403
    db.dispose()


def test_audit_page_in_both_languages_for_admins_and_inspectors(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    db = make_engine(settings.database_url)
    accounts.create_user(db, "jiwei", "pw-jiwei", "inspector")
    db.dispose()
    client.delete("/api/v1/tokens/4242", headers=auth(token))
    assert console_login(client).status_code == 200
    refused = client.get("/console/audit")
    assert refused.status_code == 403 and "无权" in refused.text  # a district operator: not theirs
    assert 'href="/console/audit"' not in client.get("/console").text
    client.cookies.clear()
    assert console_login(client, "jiwei", "pw-jiwei").status_code == 200
    zh = client.get("/console/audit")
    assert zh.status_code == 200 and "操作审计" in zh.text and "删除" in zh.text and "被拒绝" in zh.text
    assert 'data-status="404"' in zh.text and "/api/v1/tokens/4242" in zh.text
    assert 'href="/console/audit"' in zh.text and 'href="/console/dead-letters"' not in zh.text
    en = client.get("/console/audit", params={"lang": "en", "actor": "op", "method": "DELETE"})
    assert "Audit trail" in en.text and "Delete" in en.text and "Refused" in en.text
    assert "/api/v1/exports/audit.csv?actor=op&amp;method=DELETE" in en.text
    nobody = client.get("/console/audit", params={"actor": "someone-else"})
    assert "No matching entries" in nobody.text
    bad = client.get("/console/audit", params={"from": "last tuesday"})
    assert bad.status_code == 200 and "A time is not valid" in bad.text
    dated = client.get("/console/audit", params={"from": "2020-01-01T08:00", "to": "2020-01-02T08:00"})
    assert "No matching entries" in dated.text
    assert client.get("/console/dead-letters").status_code == 403
