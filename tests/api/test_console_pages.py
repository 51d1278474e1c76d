"""Console pages over HTTP (the browser test drives the case flow): alerts, silences, CSRF."""

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from alerts.intake import CaseBook
from alerts.rules import load_rules
from api.settings import ApiSettings
from cases.policy import CasePolicy
from common.db import make_engine
from tests.alerts.scenario import CONFIG, Scenario
from tests.api.conftest import console_login


def sign_in(client: TestClient) -> str:
    page = console_login(client)
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def test_alerts_page_lists_firing_alerts_and_manages_silences(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    db = make_engine(settings.database_url)
    policy = CasePolicy.load(CONFIG)
    scenario = Scenario(load_rules(CONFIG, policy.categories))
    CaseBook(db, policy, timedelta(minutes=1)).apply(scenario.reading(0, "wl-01", level_cm=80))
    db.dispose()
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


def test_fleet_and_rule_noise_pages(client: TestClient, token: str, settings: ApiSettings) -> None:
    from datetime import UTC, datetime

    from alerts.fleet import record_devices, record_gateway
    from contract import StateMessage

    db = make_engine(settings.database_url)
    record_devices(db, {("zhuganxiang", "wl-01"): int(datetime.now(UTC).timestamp() * 1000)})
    record_gateway(
        db,
        "zhuganxiang",
        "gw-01",
        StateMessage.model_validate(
            {
                "online": False,
                "spool": {"depth": 12, "oldest_ts": None, "dropped": 3},
                "modem": {"rsrp": -104.0, "sinr": 6.0},
                "cameras": {
                    "cam-01": {"fps": 9.8, "frames": 100, "dropped": 1, "reconnects": 0, "connected": True}
                },
            }
        ),
    )
    policy = CasePolicy.load(CONFIG)
    CaseBook(db, policy, timedelta(minutes=1)).apply(
        Scenario(load_rules(CONFIG, policy.categories)).reading(0, "wl-01", level_cm=80)
    )
    db.dispose()
    sign_in(client)
    fleet = client.get("/console/fleet").text
    assert (
        'data-gateway="gw-01" data-online="False"' in fleet
        and "RSRP -104.0 dBm" in fleet
        and "cam-01: 9.8 fps" in fleet
    )
    assert (
        'data-device="wl-01" data-silent="False"' in fleet
        and 'data-device="wl-02" data-silent="True"' in fleet
    )
    rules = client.get("/console/rules").text
    assert 'data-rule="flooding-water-level"' in rules and 'data-fired="1"' in rules


def test_case_page_charts_the_triggering_readings_with_the_threshold(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    from series.factory import open_store
    from series.store import Point
    from tests.alerts.scenario import T0

    store = open_store(settings.series_url)
    tags = {"community": "zhuganxiang", "gateway": "gw-01", "device": "wl-01", "grid": "g-north"}
    store.write(
        [
            Point("water.level", tags, {"level_cm": float(10 + 2 * i)}, T0 - 60_000 * (30 - i))
            for i in range(31)
        ]
    )
    store.close()
    db = make_engine(settings.database_url)
    policy = CasePolicy.load(CONFIG)
    CaseBook(db, policy, timedelta(minutes=1)).apply(
        Scenario(load_rules(CONFIG, policy.categories)).reading(0, "wl-01", level_cm=70)
    )
    db.dispose()
    sign_in(client)
    page = client.get("/console/cases/1").text
    assert 'id="evidence-chart"' in page and 'class="threshold"' in page
    assert 'class="x-label"' in page and 'class="y-label"' in page  # real axes, as on the device page
    assert '<figcaption>水位 (cm) · <span class="threshold-word">' in page  # the field by its name (#23)


def test_line_chart_scales_into_the_box() -> None:
    from api.console.charts import HEIGHT, line_chart

    assert line_chart([(0, 1.0)], "x", "", None) is None
    chart = line_chart([(0, 0.0), (10, 100.0)], "x", "cm", 50.0)
    assert chart is not None and chart.threshold_y is not None
    assert 0 < chart.threshold_y < HEIGHT and chart.points.count(",") == 2


def test_every_console_page_sends_a_stranger_to_the_login(client: TestClient, token: str) -> None:
    pages = [
        "/console",
        "/console/kpis",
        "/console/alerts",
        "/console/fleet",
        "/console/rules",
        "/console/cases/1",
    ]
    forms = ["/console/silences", "/console/silences/1/expire", "/console/cases/1/actions"]
    answers = [client.get(path, follow_redirects=False) for path in pages]
    answers += [client.post(path, data={"csrf": "x"}, follow_redirects=False) for path in forms]
    for path, answer in zip(pages + forms, answers, strict=True):
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login", path
        assert answer.content == b"", path  # a bare redirect, as a route's own RedirectResponse
    assert client.get("/console/stream").status_code == 401  # an event stream is refused, not redirected


def test_the_other_language_link_keeps_the_period_and_the_filters(client: TestClient, token: str) -> None:
    sign_in(client)
    for url in ("/console/kpis?period=quarter&date=2026-07-01&lang=zh", "/console?state=NEW&grid=g-north"):
        shown = client.get(url)
        assert shown.status_code == 200, url
        [link] = re.findall(r'<a href="([^"]*lang=en[^"]*)"', shown.text)
        path, _, query = link.replace("&amp;", "&").partition("?")
        asked_path, _, asked = url.partition("?")
        assert path == asked_path
        kept = {p for p in asked.split("&") if not p.startswith("lang=")}
        assert kept <= set(query.split("&")) and "lang=en" in query.split("&"), link
