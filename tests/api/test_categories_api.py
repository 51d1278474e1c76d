"""Case categories as data through the API (#28): create, list, change; every bad input refused with what
to fix and nothing stored; only district admins and operators change them; a case opened in a new
category gets that category's SLA; a rule may name it once it exists. SQLite and a real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.settings import ApiSettings
from cases import actions
from cases.models import Case, CategoryOverride
from cases.policy import CasePolicy
from common.db import make_engine
from tests.api.conftest import CONFIG, audited, auth

CO2: dict[str, Any] = {
    "id": "air_co2_high",
    "name_zh": "二氧化碳超标",
    "name_en": "CO₂ too high",
    "sla_hours": {"normal": 12, "urgent": 3},
    "department": "housing",
    "clock": "continuous",  # every hour counts: deadlines are exact
}


def create(client: TestClient, token: str, **changes: Any) -> Any:
    return client.post("/api/v1/categories", json=CO2 | changes, headers=auth(token))


def listed(client: TestClient, token: str) -> dict[str, dict[str, Any]]:
    response = client.get("/api/v1/categories", headers=auth(token))
    assert response.status_code == 200, response.text
    return {c["id"]: c for c in response.json()}


def stored_revisions(settings: ApiSettings) -> tuple[int, int]:
    db = make_engine(settings.database_url)
    try:
        with Session(db) as session:
            count, total = session.execute(
                select(func.count(), func.coalesce(func.sum(CategoryOverride.revision), 0))
            ).one()
    finally:
        db.dispose()
    return int(count), int(total)


def report(client: TestClient, token: str, category: str, grid: str = "g-north") -> dict[str, Any]:
    body = {"community": "zhuganxiang", "grid": grid, "category": category, "description": "CO₂ 5000 ppm"}
    created = client.post("/api/v1/cases", json=body, headers=auth(token))
    assert created.status_code == 201, created.text
    detail = client.get(f"/api/v1/cases/{created.json()['id']}", headers=auth(token)).json()
    return dict(detail)


def hours_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600


def test_a_new_category_is_listed_goes_to_its_department_and_is_audited(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    assert "air_co2_high" not in listed(client, token)
    created = create(client, token)
    assert created.status_code == 201, created.text
    assert created.json() == {
        "id": "air_co2_high",
        "name_zh": "二氧化碳超标",
        "name_en": "CO₂ too high",
        "sla_hours": {"normal": 12.0, "urgent": 3.0},
        "department": "housing",
        "clock": "continuous",
        "accept_minutes": 30.0,
        "sign_minutes": 60.0,
    }
    categories = listed(client, token)
    assert categories["air_co2_high"] == created.json()
    # Config categories are listed with their SLA per urgency and their department too.
    assert categories["flooding"]["sla_hours"] == {"normal": 4.0, "urgent": 2.0}
    assert categories["flooding"]["department"] == "water"
    departments = {
        d["id"]: d for d in client.get("/api/v1/organisation", headers=auth(token)).json()["departments"]
    }
    assert "air_co2_high" in departments["housing"]["categories"]
    assert ("op", "POST", "/api/v1/categories", 201) in audited(settings, "/api/v1/categories%")


BAD_INPUTS: list[tuple[str, dict[str, Any], int, str]] = [
    ("no SLA at all", {"sla_hours": None}, 422, "sla_hours: required"),
    ("an urgency without an SLA", {"sla_hours": {"normal": 12}}, 422, "sla_hours.urgent: missing"),
    ("the normal SLA missing", {"sla_hours": {"urgent": 3}}, 422, "sla_hours.normal: missing"),
    (
        "a negative SLA",
        {"sla_hours": {"normal": -2, "urgent": 3}},
        422,
        "sla_hours.normal: -2.0 is not a time limit",
    ),
    (
        "a zero SLA",
        {"sla_hours": {"normal": 12, "urgent": 0}},
        422,
        "sla_hours.urgent: 0.0 is not a time limit",
    ),
    ("a ten-year SLA", {"sla_hours": {"normal": 87600, "urgent": 3}}, 422, "at most 8784"),
    (
        "an urgency that does not exist",
        {"sla_hours": {"normal": 1, "urgent": 1, "critical": 1}},
        422,
        "unknown urgency 'critical'; the urgencies are normal, urgent",
    ),
    (
        "an unknown department",
        {"department": "traffic"},
        422,
        "department: unknown department 'traffic'; known: ",
    ),
    ("no department", {"department": None}, 422, "department: required"),
    ("an id that is not a slug", {"id": "CO2 High"}, 422, "id: 'CO2 High' is not a category id"),
    ("an id with a dash", {"id": "co2-high"}, 422, "lowercase letters, digits and underscores"),
    ("no English name", {"name_en": None}, 422, "name_en: required: the category's name in English"),
    ("no Chinese name", {"name_zh": None}, 422, "name_zh: required: the category's name in 简体中文"),
    ("a blank name", {"name_zh": "   "}, 422, "name_zh: give the name in 简体中文 as printable text"),
    ("a name with a control character", {"name_en": "CO2\x00"}, 422, "name_en: give the name in English"),
    ("a taken id", {"id": "flooding"}, 409, "category 'flooding' exists"),
]


@pytest.mark.parametrize(
    ("change", "status", "reason"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_each_bad_category_is_refused_naming_what_to_fix_and_nothing_is_stored(
    client: TestClient, token: str, settings: ApiSettings, change: dict[str, Any], status: int, reason: str
) -> None:
    before = listed(client, token)
    refused = create(client, token, **change)
    assert refused.status_code == status, refused.text
    assert reason in refused.json()["detail"]
    assert listed(client, token) == before
    assert stored_revisions(settings) == (0, 0)


def test_malformed_fields_are_refused_by_the_schema_naming_the_field(client: TestClient, token: str) -> None:
    for change, field in (
        ({"name_zh": "长" * 65}, "name_zh"),
        ({"sla_hours": {"normal": "four", "urgent": 1}}, "sla_hours"),
        ({"sla_hours": {f"u{i}": 1 for i in range(9)}}, "sla_hours"),
        ({"clock": "lunar"}, "clock"),
        ({"colour": "red"}, "colour"),
    ):
        refused = create(client, token, **change)
        assert refused.status_code == 422, change
        assert any(field in e["loc"] for e in refused.json()["detail"]), refused.json()
    huge = client.post(
        "/api/v1/categories",
        content=b'{"id": "' + b"x" * (2 * 1024 * 1024) + b'"}',
        headers=auth(token) | {"Content-Type": "application/json"},
    )
    assert huge.status_code == 413  # before any parsing
    assert "air_co2_high" not in listed(client, token)


def test_a_case_opened_in_the_new_category_gets_its_sla_and_a_change_applies_to_later_cases(
    client: TestClient, token: str
) -> None:
    assert create(client, token).status_code == 201
    first = report(client, token, "air_co2_high", grid="g-north")
    assert first["category_name"] == "二氧化碳超标"
    assert hours_between(first["opened_at"], first["deadline"]) == pytest.approx(12)

    changed = client.patch(
        "/api/v1/categories/air_co2_high", json={"sla_hours": {"normal": 6}}, headers=auth(token)
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["sla_hours"] == {"normal": 6.0, "urgent": 3.0}  # the urgent limit kept
    second = report(client, token, "air_co2_high", grid="g-middle")
    assert hours_between(second["opened_at"], second["deadline"]) == pytest.approx(6)
    kept = client.get(f"/api/v1/cases/{first['id']}", headers=auth(token)).json()
    assert kept["deadline"] == first["deadline"]  # an open case keeps the deadline it was given


def test_changes_to_names_department_and_a_configured_category(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    assert create(client, token).status_code == 201
    renamed = client.patch(
        "/api/v1/categories/air_co2_high",
        json={"name_zh": "室内二氧化碳超标", "name_en": "Indoor CO₂ too high", "department": "emergency"},
        headers=auth(token),
    )
    assert renamed.status_code == 200, renamed.text
    assert listed(client, token)["air_co2_high"]["name_en"] == "Indoor CO₂ too high"
    departments = {
        d["id"]: d for d in client.get("/api/v1/organisation", headers=auth(token)).json()["departments"]
    }
    assert "air_co2_high" in departments["emergency"]["categories"]
    assert "air_co2_high" not in departments["housing"]["categories"]
    # A configured category changes too: the stored version replaces config's, the rest of it kept.
    flooding = client.patch(
        "/api/v1/categories/flooding", json={"sla_hours": {"urgent": 1}}, headers=auth(token)
    )
    assert flooding.status_code == 200, flooding.text
    assert flooding.json() | {"sla_hours": None} == listed(client, token)["flooding"] | {"sla_hours": None}
    assert flooding.json()["sla_hours"] == {"normal": 4.0, "urgent": 1.0}
    assert flooding.json()["accept_minutes"] == 10.0 and flooding.json()["department"] == "water"
    before = stored_revisions(settings)
    for path, body, status, reason in (
        ("/api/v1/categories/air_co2_high", {}, 422, "nothing to change"),
        ("/api/v1/categories/air_co2_high", {"department": "traffic"}, 422, "unknown department 'traffic'"),
        ("/api/v1/categories/air_co2_high", {"sla_hours": {"urgent": -1}}, 422, "sla_hours.urgent"),
        ("/api/v1/categories/air_co2_high", {"sla_hours": {"soon": 1}}, 422, "unknown urgency 'soon'"),
        ("/api/v1/categories/air_co2_high", {"name_en": " "}, 422, "name_en: give the name"),
        ("/api/v1/categories/ghost", {"name_en": "Ghost"}, 404, "no category 'ghost'"),
    ):
        refused = client.patch(path, json=body, headers=auth(token))
        assert refused.status_code == status, (body, refused.text)
        assert reason in refused.json()["detail"]
    assert stored_revisions(settings) == before
    assert listed(client, token)["air_co2_high"]["name_en"] == "Indoor CO₂ too high"
    assert ("op", "PATCH", "/api/v1/categories/flooding", 200) in audited(settings, "/api/v1/categories%")


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        ("town_operator", {"town": "yuehe"}),
        ("grid_worker", {"community": "zhuganxiang", "grid": "g-north"}),
        ("building_head", {"community": "zhuganxiang", "grid": "g-north"}),
        ("department_handler", {"department": "housing"}),
        ("supervisor", {}),
        ("inspector", {}),
    ],
)
def test_only_district_admins_and_operators_change_categories(
    client: TestClient,
    token: str,
    login: Callable[..., str],
    settings: ApiSettings,
    role: str,
    scope: dict[str, str],
) -> None:
    other = login("someone", role, **scope)
    assert create(client, other).status_code == 403
    patched = client.patch("/api/v1/categories/flooding", json={"name_en": "Floods"}, headers=auth(other))
    assert patched.status_code == 403
    assert "air_co2_high" not in listed(client, other)  # reading is everyone's
    assert listed(client, other)["flooding"]["name_en"] == "Flooding"
    assert stored_revisions(settings) == (0, 0)
    assert ("someone", "POST", "/api/v1/categories", 403) in audited(settings, "/api/v1/categories%")
    admin = login("root", "admin")
    assert create(client, admin).status_code == 201


def test_the_alert_sides_policy_picks_up_a_new_category_within_seconds(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    """The alert service holds its own CasePolicy (as ``alerts.service`` builds it): a category created
    through the API reaches it without a restart, and a case it opens gets the category's urgent SLA."""
    db = make_engine(settings.database_url)
    try:
        alerts_policy = CasePolicy.load(CONFIG, db)
        assert "air_co2_high" not in alerts_policy.categories
        assert create(client, token).status_code == 201
        started = time.monotonic()
        while "air_co2_high" not in alerts_policy.categories:
            assert time.monotonic() - started < 5, "the alert side did not see the new category within 5 s"
            time.sleep(0.1)
        now = datetime.now(UTC)
        with Session(db) as session, session.begin():
            case = actions.open_case(
                session,
                alerts_policy,
                community="zhuganxiang",
                grid="g-south",
                category="air_co2_high",
                title="二氧化碳超标：3号楼",
                source="sensor",
                severity="critical",  # a critical alert opens an urgent case
                actor="system:alerts",
                action="opened",
                note="co2-high fired",
                now=now,
            )
            session.flush()
            case_id = case.id
        with Session(db) as session:
            opened = session.get(Case, case_id)
            assert opened is not None and opened.urgency == "urgent"
            assert opened.deadline - opened.opened_at == timedelta(hours=3)
    finally:
        db.dispose()


def test_a_rule_may_name_the_category_once_it_exists(client: TestClient, token: str) -> None:
    rule = (
        "rules:\n  - {id: damp-basement, version: 1, scope: {type: water.level@1}, severity: warning,"
        " category: air_co2_high,\n     threshold: {field: level_cm, op: '>=', value: 10}}\n"
    )
    headers = auth(token) | {"Content-Type": "application/yaml"}
    before = client.post("/api/v1/rules/validate", content=rule, headers=headers)
    assert before.status_code == 422 and "unknown category 'air_co2_high'" in before.json()["detail"]
    assert create(client, token).status_code == 201
    after = client.post("/api/v1/rules/validate", content=rule, headers=headers)
    assert after.status_code == 200, after.text
