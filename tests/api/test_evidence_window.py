"""A case's evidence window through the API and the console: what the engine saw when the alert fired,
shown even after the time series is gone."""

from datetime import timedelta

from fastapi.testclient import TestClient

from alerts.intake import CaseBook
from alerts.rules import load_rules
from api.settings import ApiSettings
from cases.policy import CasePolicy
from common.db import make_engine
from tests.alerts.scenario import CONFIG, T0, Scenario
from tests.api.conftest import auth
from tests.api.test_console_pages import sign_in

LEVELS = [(-1800, 20.0), (-1200, 25.0), (-600, 31.5)]


def open_case_with_window(settings: ApiSettings) -> None:
    """wl-01 rises slowly for half an hour, then floods; nothing is written to the time-series store."""
    db = make_engine(settings.database_url)
    policy = CasePolicy.load(CONFIG)
    scenario = Scenario(load_rules(CONFIG, policy.categories))
    for seconds, level in LEVELS:
        assert scenario.reading(seconds, "wl-01", level_cm=level) == []
    CaseBook(db, policy, timedelta(minutes=1)).apply(scenario.reading(0, "wl-01", level_cm=72))
    db.dispose()


def test_case_detail_returns_the_evidence_window(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    open_case_with_window(settings)
    [evidence] = client.get("/api/v1/cases/1", headers=auth(token)).json()["evidence"]
    assert evidence["rule_id"] == "flooding-water-level" and evidence["observed"] == {"level_cm": 72}
    assert evidence["readings"] == [[T0 + s * 1000, v] for s, v in LEVELS] + [[T0, 72]]


def test_console_charts_the_stored_window_when_the_series_is_gone(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    open_case_with_window(settings)  # the store is empty, as after retention deleted the series
    sign_in(client)
    page = client.get("/console/cases/1").text
    assert 'id="evidence-chart"' in page and 'class="threshold"' in page
    assert 'class="x-label"' in page and 'class="y-label"' in page  # real axes, as on the device page
    assert '<figcaption>水位 (cm) · <span class="threshold-word">' in page  # the field by its name (#23)
    assert page.count(",", page.index("<polyline points="), page.index('" fill="none"')) == 4
