"""The audit trail over the API: who did what, when, from where — filtered, paged newest first, exported
as CSV with formula cells defused; for admins and inspectors only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from api import accounts
from api.routes.audit import safe_cell
from api.settings import ApiSettings
from common.db import make_engine
from tests.api.conftest import auth


def _accounts(settings: ApiSettings) -> dict[str, str]:
    db = make_engine(settings.database_url)
    try:
        tokens = {}
        for username, role in (
            ("root", "admin"),
            ("jiwei", "inspector"),
            ("=HYPERLINK(1)", "district_operator"),
        ):
            tokens[username] = accounts.issue_token(db, accounts.create_user(db, username, "pw", role))
        return tokens
    finally:
        db.dispose()


def test_admins_and_inspectors_read_the_log_filtered_and_paged(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    tokens = _accounts(settings)
    for n in range(3):
        assert client.delete(f"/api/v1/tokens/{9000 + n}", headers=auth(token)).status_code == 404
    client.delete("/api/v1/tokens/9999", headers=auth(tokens["=HYPERLINK(1)"]))
    for reader in ("root", "jiwei"):
        page = client.get("/api/v1/audit", params={"actor": "op"}, headers=auth(tokens[reader]))
        assert page.status_code == 200
        entries = page.json()["entries"]
        assert [e["path"] for e in entries] == [f"/api/v1/tokens/{9000 + n}" for n in (2, 1, 0)]
        assert {(e["actor"], e["method"], e["status"], e["client"]) for e in entries} == {
            ("op", "DELETE", 404, "testclient")
        }
    first = client.get(
        "/api/v1/audit", params={"limit": 2, "actor": "op"}, headers=auth(tokens["root"])
    ).json()
    assert len(first["entries"]) == 2 and first["next_before"] == first["entries"][-1]["id"]
    rest = client.get(
        "/api/v1/audit",
        params={"limit": 2, "actor": "op", "before": first["next_before"]},
        headers=auth(tokens["root"]),
    ).json()
    assert [e["path"] for e in rest["entries"]] == ["/api/v1/tokens/9000"] and rest["next_before"] is None
    prefix = client.get("/api/v1/audit", params={"path": "/api/v1/tokens/9001"}, headers=auth(tokens["root"]))
    assert [e["actor"] for e in prefix.json()["entries"]] == ["op"]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    none = client.get("/api/v1/audit", params={"from": later}, headers=auth(tokens["root"]))
    assert none.json()["entries"] == []
    by_method = client.get(
        "/api/v1/audit", params={"method": "POST", "status": 404}, headers=auth(tokens["root"])
    )
    assert by_method.json()["entries"] == []


def test_others_may_not_read_the_log(client: TestClient, token: str) -> None:
    assert client.get("/api/v1/audit", headers=auth(token)).status_code == 403
    assert client.get("/api/v1/exports/audit.csv", headers=auth(token)).status_code == 403
    assert client.get("/api/v1/audit").status_code == 401


def test_bad_filters_are_refused(client: TestClient, settings: ApiSettings) -> None:
    root = _accounts(settings)["root"]
    for params in ({"method": "GET"}, {"status": "99"}, {"from": "yesterday"}, {"limit": "501"}):
        assert client.get("/api/v1/audit", params=params, headers=auth(root)).status_code == 422, params


def test_the_csv_export_has_every_entry_and_defuses_formulas(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    tokens = _accounts(settings)
    client.delete("/api/v1/tokens/9999", headers=auth(tokens["=HYPERLINK(1)"]))
    for n in range(3):
        client.delete(f"/api/v1/tokens/{8000 + n}", headers=auth(token))
    export = client.get("/api/v1/exports/audit.csv", headers=auth(tokens["jiwei"]))
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0] == ["id", "at", "actor", "method", "path", "status", "client"]
    actors = [r[2] for r in rows[1:]]
    assert actors == ["op", "op", "op", "'=HYPERLINK(1)"]  # newest first; the formula is text
    filtered = client.get("/api/v1/exports/audit.csv", params={"actor": "op"}, headers=auth(tokens["root"]))
    assert len(list(csv.reader(io.StringIO(filtered.text)))) == 4


def test_safe_cell() -> None:
    assert [safe_cell(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "plain", 404)] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        "plain",
        "404",
    ]
