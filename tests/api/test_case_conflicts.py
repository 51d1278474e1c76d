"""System events never fail an operator's next action; a person's action in between is a 409 that says
who did what, when — over the API (English) and in the console (the user's language). Each test runs on
SQLite and on a real PostgreSQL (``api_database_url``)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.engine import AlertEngine
from alerts.intake import CaseBook
from alerts.rules import load_rules
from api import accounts
from api.settings import ApiSettings
from cases import actions
from cases.actions import CaseFlow, VersionConflict
from cases.models import Case
from cases.policy import CasePolicy
from common.db import make_engine
from contract import Reading
from contract.catalog import load_catalog
from tests.api.conftest import auth, console_login
from tests.factories import open_flooding_cases
from tests.platform import CONFIG_DIR

POLICY = CasePolicy.load(CONFIG_DIR)


@pytest.fixture
def db(settings: ApiSettings, client: TestClient) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    accounts.create_user(engine, "wang.wei", "s3cret-pass", role="town_operator", town="yuehe")
    yield engine
    engine.dispose()


def flooding_case(settings: ApiSettings) -> int:
    """A sensor case of g-north, opened by wl-01 through the alert engine and the intake."""
    open_flooding_cases(settings.database_url, [datetime.now(UTC)])
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        case_id = session.scalars(select(Case.id).order_by(Case.id.desc())).first()
    engine.dispose()
    assert case_id is not None
    return case_id


def alert_joins(settings: ApiSettings, device: str = "wl-02") -> None:
    """Another water-level sensor of the same grid fires: its alert joins the open case (a system event)."""
    engine = make_engine(settings.database_url)
    book = CaseBook(engine, POLICY, timedelta(hours=1))
    alerts = AlertEngine(load_rules(CONFIG_DIR, POLICY.categories), load_catalog(CONFIG_DIR))
    now = datetime.now(UTC)
    reading = Reading(device=device, ts=int(now.timestamp() * 1000), values={"level_cm": 75})
    book.apply(alerts.on_reading("zhuganxiang", "gw-01", reading), now=now)
    engine.dispose()


def detail(client: TestClient, token: str, case_id: int) -> dict[str, Any]:
    answer = client.get(f"/api/v1/cases/{case_id}", headers=auth(token))
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def act(
    client: TestClient, token: str, case_id: int, action: str, version: object, **params: object
) -> Response:
    answer: Response = client.post(
        f"/api/v1/cases/{case_id}/actions",
        headers=auth(token),
        json={"action": action, "expected_version": version, "params": params},
    )
    return answer


def test_an_alert_joining_between_accept_and_verify_does_not_fail_verify(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    case_id = flooding_case(settings)
    accepted = act(client, token, case_id, "accept", detail(client, token, case_id)["version"])
    assert accepted.status_code == 200, accepted.text
    seen = accepted.json()["version"]
    alert_joins(settings)
    now = detail(client, token, case_id)
    assert now["version"] != seen  # the join did move the version ...
    assert [e["action"] for e in now["events"]][-1] == "alert_joined"
    verified = act(client, token, case_id, "verify", seen)  # ... and the operator acts on what they saw
    assert verified.status_code == 200, verified.text
    assert verified.json()["state"] == "FILED"
    assert verified.json()["events"][-1]["data"]["version"] == verified.json()["version"]


def test_a_person_acting_in_between_is_a_409_that_names_them(
    client: TestClient, token: str, settings: ApiSettings, db: Engine
) -> None:
    case_id = flooding_case(settings)
    version = detail(client, token, case_id)["version"]
    wang = accounts.find_user(db, "wang.wei")
    assert wang is not None
    other = accounts.issue_token(db, wang)
    assert act(client, other, case_id, "accept", version).status_code == 200
    alert_joins(settings)  # a system event on top: the conflict is still the person's
    stale = act(client, token, case_id, "void", version, reason="duplicate")
    assert stale.status_code == 409
    body = stale.json()
    assert body["expected_version"] == version and body["version"] > version + 1
    assert [(c["actor"], c["action"], c["to_state"]) for c in body["changes"]] == [
        ("wang.wei", "accept", "VERIFYING")
    ]
    assert re.search(r"wang\.wei did accept at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", body["detail"])
    assert "version" in body["detail"] and "reload" in body["detail"]
    assert detail(client, token, case_id)["state"] == "VERIFYING"  # nothing of the stale void applied


def test_the_console_explains_a_conflict_in_the_users_language(
    client: TestClient, token: str, settings: ApiSettings, db: Engine
) -> None:
    case_id = flooding_case(settings)
    with Session(db) as session:
        version = session.get_one(Case, case_id).version
    CaseFlow(db, POLICY).act(case_id, "accept", actor="wang.wei", expected_version=version)
    assert console_login(client).status_code in (200, 303)
    page = client.get(f"/console/cases/{case_id}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    form = {"csrf": csrf.group(1), "action": "void", "reason": "duplicate", "expected_version": str(version)}
    answer = client.post(f"/console/cases/{case_id}/actions", data=form, follow_redirects=False)
    assert answer.status_code == 409
    error = re.search(r'id="case-error"[^>]*>(.*?)</p>', answer.text, re.S)
    assert error is not None
    assert "您打开此案件后，已有人处理：王伟于" in error.group(1) and "受理" in error.group(1)
    assert "（现为“核实”）" in error.group(1) and "version" not in error.group(1)
    english = client.post(f"/console/cases/{case_id}/actions?lang=en", data=form, follow_redirects=False)
    told = re.search(r'id="case-error"[^>]*>(.*?)</p>', english.text, re.S)
    assert told is not None and "Since you opened this case, someone acted on it: " in told.group(1)
    assert "Accept" in told.group(1) or "accept" in told.group(1).lower()


def test_two_people_at_once_exactly_one_wins_while_an_alert_joins(
    client: TestClient, settings: ApiSettings, db: Engine
) -> None:
    case_id = flooding_case(settings)
    flow = CaseFlow(db, POLICY)
    version = _version(db, case_id)
    barrier, outcomes = threading.Barrier(3), []

    def person(action: str, params: dict[str, object]) -> None:
        barrier.wait()
        try:
            flow.act(case_id, action, actor=f"op-{action}", expected_version=version, params=params)
            outcomes.append(("ok", action))
        except VersionConflict as err:
            outcomes.append(("conflict", ",".join(c.actor for c in err.changes)))

    def system() -> None:
        barrier.wait()
        alert_joins(settings)

    threads = [
        threading.Thread(target=person, args=("accept", {})),
        threading.Thread(target=person, args=("void", {"reason": "duplicate"})),
        threading.Thread(target=system),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(kind for kind, _ in outcomes) == ["conflict", "ok"], outcomes
    winner = next(what for kind, what in outcomes if kind == "ok")
    assert next(what for kind, what in outcomes if kind == "conflict") == f"op-{winner}"  # told who won
    with Session(db) as session:
        case = session.get_one(Case, case_id)
        assert [e.action for e in case.events if not e.actor.startswith("system:")] == [winner]
        assert case.state == ("VERIFYING" if winner == "accept" else "VOID")
        if winner == "accept":  # still open: the alert joined it (a void case makes the alert a new one)
            assert "alert_joined" in [e.action for e in case.events]


def _version(db: Engine, case_id: int) -> int:
    with Session(db) as session:
        return session.get_one(Case, case_id).version


def test_an_action_the_system_made_impossible_is_explained(
    client: TestClient, token: str, settings: ApiSettings, db: Engine
) -> None:
    case_id = flooding_case(settings)
    flow = CaseFlow(db, POLICY)
    for action, params in (("accept", {}), ("verify", {}), ("assign", {"assignee": "li.na"}), ("sign", {})):
        flow.act(case_id, action, actor="wang.wei", params=params)
    flow.act(case_id, "feedback", actor="li.na")
    seen = _version(db, case_id)
    with Session(db) as session, session.begin():  # the auto check passes it (核查 by the system)
        actions.pass_check(
            session,
            POLICY,
            session.get_one(Case, case_id),
            note="auto check",
            actor="system:autocheck",
            now=datetime.now(UTC),
        )
    late = act(client, token, case_id, "check", seen)
    assert late.status_code == 409
    changes = [(c["actor"], c["action"], c["to_state"]) for c in late.json()["changes"]]
    assert changes == [("system:autocheck", "check", "CHECKING"), ("system:autocheck", "pass", "CLOSED")]
