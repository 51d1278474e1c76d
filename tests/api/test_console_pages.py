"""Console pages over HTTP (the browser test drives the case flow): alerts, silences, CSRF."""

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from alerts.casebook import CaseBook
from alerts.policy import CasePolicy
from alerts.rules import load_rules
from api.settings import ApiSettings
from tests.alerts.scenario import CONFIG, Scenario
from yiwang.common.db import make_engine


def sign_in(client: TestClient) -> str:
    page = client.post("/console/login", data={"username": "op", "password": "correct horse"})
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def test_alerts_page_lists_firing_alerts_and_manages_silences(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    engine = make_engine(settings.database_url)
    policy = CasePolicy.load(CONFIG)
    scenario = Scenario(load_rules(CONFIG, policy.categories))
    CaseBook(engine, policy, timedelta(minutes=1)).apply(scenario.reading(0, "wl-01", level_cm=80))
    engine.dispose()
    csrf = sign_in(client)
    page = client.get("/console/alerts")
    assert 'data-status="firing"' in page.text and "flooding-water-level" in page.text
    refused = client.post("/console/silences", data={"csrf": "forged", "device": "wl-01", "hours": "1"})
    assert refused.status_code == 403
    created = client.post(
        "/console/silences", data={"csrf": csrf, "device": "wl-01", "hours": "1", "comment": "pump test"}
    )
    assert created.status_code == 200 and "pump test" in created.text
    silence_id = re.search(r'data-silence-id="(\d+)"', created.text).group(1)  # type: ignore[union-attr]
    ended = client.post(f"/console/silences/{silence_id}/expire", data={"csrf": csrf})
    assert ended.status_code == 200 and "pump test" not in ended.text
    assert client.get("/console/alerts", params={"lang": "en"}).text.count("Firing") >= 1
