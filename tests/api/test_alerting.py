"""Rules with outcomes, alerts and silences over HTTP."""

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from alerts.intake import CaseBook
from api.settings import ApiSettings
from cases.models import Case, CaseState
from cases.policy import CasePolicy
from common.db import make_engine
from tests.alerts.scenario import CONFIG, T0, Scenario
from tests.api.conftest import auth


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 / 1000, UTC) + timedelta(seconds=seconds)


def test_rules_carry_their_outcomes(client: TestClient, token: str, settings: ApiSettings) -> None:
    db = make_engine(settings.database_url)
    book = CaseBook(db, CasePolicy.load(CONFIG), timedelta(minutes=1))
    scenario = Scenario(client.app.state.resources.rules)  # type: ignore[attr-defined]
    book.apply(scenario.reading(0, "wl-01", level_cm=72), now=at(0))  # case 1, recovers by itself
    book.apply(scenario.reading(5, "wl-01", level_cm=10), now=at(5))
    book.apply(scenario.reading(600, "wl-01", level_cm=72), now=at(600))  # case 2, voided as a false alarm
    with Session(db) as session, session.begin():
        session.execute(update(Case).where(Case.id == 2).values(state=CaseState.VOID.value))
    db.dispose()

    rules = {r["id"]: r for r in client.get("/api/v1/rules", headers=auth(token)).json()}
    assert rules["flooding-water-level"]["outcomes"] == {
        "fired": 2,
        "silenced": 0,
        "inhibited": 0,
        "flapping": 0,
        "cases_opened": 2,
        "cases_voided": 1,
        "self_recovered": 1,
    }
    assert rules["gas-lel-high"]["outcomes"]["fired"] == 0
    assert rules["silent-water-level"]["condition"] == "stale"
    one = client.get("/api/v1/rules/flooding-water-level", headers=auth(token)).json()
    assert one["spec"]["value"] == 50 and one["scope"] == {"type": "water.level@1"}
    assert client.get("/api/v1/rules/nope", headers=auth(token)).status_code == 404

    alerts = client.get("/api/v1/alerts", params={"status": "firing"}, headers=auth(token)).json()
    assert [(a["subject"], a["status"], a["case_id"]) for a in alerts["items"]] == [("wl-01", "firing", 2)]


def test_silences_lifecycle(client: TestClient, token: str) -> None:
    ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    created = client.post(
        "/api/v1/silences",
        headers=auth(token),
        json={"matchers": {"device": "wl-01"}, "ends_at": ends, "comment": "pump test"},
    )
    assert created.status_code == 201
    silence = created.json()
    assert silence["author"] == "op" and silence["kind"] == "silence"
    assert [s["id"] for s in client.get("/api/v1/silences", headers=auth(token)).json()] == [silence["id"]]
    assert client.delete(f"/api/v1/silences/{silence['id']}", headers=auth(token)).status_code == 204
    assert client.get("/api/v1/silences", headers=auth(token)).json() == []
    assert client.delete(f"/api/v1/silences/{silence['id']}", headers=auth(token)).status_code == 404


def test_bad_silences_are_422(client: TestClient, token: str) -> None:
    ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    for body in (
        {"matchers": {}, "ends_at": ends},
        {"matchers": {"device": "wl-01"}, "ends_at": past},
        {"matchers": {"device": "wl-01"}, "ends_at": "2026-07-01T08:00:00"},
        {"matchers": {"colour": "red"}, "ends_at": ends},
    ):
        assert client.post("/api/v1/silences", headers=auth(token), json=body).status_code == 422
    assert (
        client.post("/api/v1/silences", json={"matchers": {"device": "wl-01"}, "ends_at": ends}).status_code
        == 401
    )


def test_rule_files_are_validated_before_deployment(client: TestClient, token: str) -> None:
    good = "rules:\n  - {id: wet, version: 1, scope: {type: water.level@1}, severity: warning, category: flooding,\n     threshold: {field: level_cm, op: '>=', value: 30}}\n"
    ok = client.post(
        "/api/v1/rules/validate", content=good, headers=auth(token) | {"Content-Type": "application/yaml"}
    )
    assert ok.status_code == 200 and ok.json() == {"ok": True, "rules": ["wet"]}
    for bad, reason in (
        (good.replace("'>='", "'=>'"), "rules.0.threshold.op"),
        (good.replace("flooding", "floods"), "unknown category 'floods'"),
        ("rules: [", "not a YAML document"),
        (
            "rules:\n  - {id: both, version: 1, severity: critical, category: fire_smoke,\n     composite: {op: all, rules: [smoke-alarm, ghost]}}\n",
            "unknown rule 'ghost'",
        ),
    ):
        response = client.post("/api/v1/rules/validate", content=bad, headers=auth(token))
        assert response.status_code == 422, bad
        assert reason in response.json()["detail"]
    assert client.post("/api/v1/rules/validate", content=good).status_code == 401
