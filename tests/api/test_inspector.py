"""The inspector (纪委) reads every case of the district and changes nothing: every write route of the
API (enumerated from the OpenAPI document) and every console form answers 403 to an inspector, whatever
its path parameters and body — the refusal is the app's, before any route looks at the request."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api import accounts
from api.read_only import ALWAYS_ALLOWED
from api.scope import may_read_audit, may_write, sees_district
from common.db import make_engine
from tests.api.conftest import auth, console_login
from tests.api.two_towns import A, B, Seeded

WRITES = ("POST", "PUT", "PATCH", "DELETE")
INSPECTOR, PASSWORD = "jiwei", "pw-inspector"


@pytest.fixture(scope="module")
def inspector_token(towns: Seeded) -> str:
    db = make_engine(towns.settings.database_url)
    try:
        user = accounts.find_user(db, INSPECTOR) or accounts.create_user(
            db, INSPECTOR, PASSWORD, "inspector", "纪委检查员"
        )
        return accounts.issue_token(db, user, "inspection")
    finally:
        db.dispose()


def _concrete(path: str) -> str:
    """A path template with every parameter filled (an id that may or may not exist)."""
    return re.sub(r"\{[^}]+\}", "1", path)


def api_writes(client: TestClient) -> list[tuple[str, str]]:
    schema: dict[str, Any] = client.get("/openapi.json").json()
    return sorted(
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method.upper() in WRITES
    )


def _routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, including those of included routers (the console's carry no prefix)."""
    found: list[APIRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += _routes(included.routes)
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def console_writes(client: TestClient) -> list[tuple[str, str]]:
    """Routes outside the OpenAPI document (the console's forms) that take writes."""
    hidden = [r for r in _routes(client.app.routes) if not r.include_in_schema]  # type: ignore[attr-defined]
    return sorted(
        (m, r.path) for r in hidden for m in r.methods or () if m in WRITES and r.path not in ALWAYS_ALLOWED
    )


def test_the_inspector_role_is_district_wide_and_read_only() -> None:
    inspector = accounts.User(1, INSPECTOR, "", "inspector")
    assert not may_write(inspector) and may_read_audit(inspector) and not sees_district(inspector)
    assert accounts.ROLES["inspector"] == ()  # no jurisdiction fields: the whole district


def test_every_api_write_route_answers_403_to_an_inspector(
    towns_api: TestClient, towns: Seeded, inspector_token: str
) -> None:
    writes = api_writes(towns_api)
    # The enumeration finds the API's writes, this feature's among them.
    assert ("POST", "/api/v1/cases/{case_id}/actions") in writes and len(writes) >= 15, writes
    assert ("POST", "/api/v1/dead-letters/replay") in writes
    answers = {
        (method, path): towns_api.request(
            method, _concrete(path), headers=auth(inspector_token), json={}
        ).status_code
        for method, path in writes
    }
    assert {k: v for k, v in answers.items() if v != 403} == {}
    # The same requests from district staff are not refused for being writes: the guard is the role's.
    staff = towns_api.request("DELETE", "/api/v1/tokens/999999", headers=auth(towns.tokens["admin"]))
    assert staff.status_code == 404


def test_every_console_form_answers_403_to_an_inspector(towns_api: TestClient, towns: Seeded) -> None:
    towns_api.cookies.clear()
    assert console_login(towns_api, INSPECTOR, PASSWORD).status_code == 200
    try:
        page = towns_api.get("/console")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        writes = console_writes(towns_api)
        assert ("POST", "/console/cases/{case_id}/actions") in writes and len(writes) >= 3, writes
        form = {"csrf": csrf, "action": "void", "note": "x", "device": "wl-01", "hours": "1"}
        answers = {
            (m, p): towns_api.request(m, _concrete(p), data=form, follow_redirects=False).status_code
            for m, p in writes
        }
        assert {k: v for k, v in answers.items() if v != 403} == {}
        # Signing out is no change to a case or setting: the inspector may.
        out = towns_api.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
        assert out.status_code == 303
    finally:
        towns_api.cookies.clear()


def test_the_inspector_sees_every_case_of_the_district(
    towns_api: TestClient, towns: Seeded, inspector_token: str
) -> None:
    listed = towns_api.get("/api/v1/cases", params={"limit": 500}, headers=auth(inspector_token))
    assert listed.status_code == 200
    seen = {c["id"] for c in listed.json()["items"]}
    assert set(towns.cases[A]) <= seen and set(towns.cases[B]) <= seen and towns.cases[B]
    one = towns_api.get(f"/api/v1/cases/{towns.cases[B][0]}", headers=auth(inspector_token))
    assert one.status_code == 200


def test_the_inspectors_refused_writes_are_audited(towns_api: TestClient, inspector_token: str) -> None:
    refused = towns_api.post("/api/v1/cases/1/actions", headers=auth(inspector_token), json={})
    assert refused.status_code == 403
    log = towns_api.get(
        "/api/v1/audit", params={"actor": INSPECTOR, "status": 403}, headers=auth(inspector_token)
    )
    assert log.status_code == 200
    assert any(e["path"] == "/api/v1/cases/1/actions" for e in log.json()["entries"])
