"""Acknowledging an alert with a note (#23): over the API and the console form, scoped like the alert,
never a change of the alert's status, shown on the alert and on its case."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from alerts.acknowledgements import acknowledgements_for_case
from alerts.engine import AlertEngine
from alerts.intake import CaseBook
from alerts.rules import load_rules
from api.console.i18n import TEXT
from api.settings import ApiSettings
from cases.policy import CasePolicy
from common.db import make_engine
from contract import Reading
from contract.catalog import load_catalog
from tests.api.conftest import auth, console_login
from tests.api.two_towns import Seeded
from tests.platform import CONFIG_DIR as CONFIG

FLOOD = "flooding-water-level|zhuganxiang|wl-01"
ACK = f"/api/v1/alerts/{quote(FLOOD, safe='')}/acknowledge"


# Wall-clock moments of the case book (the engine runs on the scenario's clock): the alert fires an hour
# ago, and fires again an hour from now, after the acknowledgement made now.
START = datetime.now(UTC) - timedelta(hours=1)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


class Flood:
    """Water levels of wl-01 through one real alert engine and case book, at wall-clock moments."""

    def __init__(self, settings: ApiSettings) -> None:
        self.db = make_engine(settings.database_url)
        policy = CasePolicy.load(CONFIG)
        self.clock = [0]
        rules = load_rules(CONFIG, policy.categories)
        self.engine = AlertEngine(rules, load_catalog(CONFIG), clock=lambda: self.clock[0])
        self.book = CaseBook(self.db, policy, timedelta(minutes=1))

    def level(self, seconds: float, cm: float) -> None:
        self.clock[0] = ms = int(at(seconds).timestamp() * 1000)
        reading = Reading(device="wl-01", ts=ms, values={"level_cm": cm})
        self.book.apply(self.engine.on_reading("zhuganxiang", "gw-01", reading), now=at(seconds))


def _flood(settings: ApiSettings, *levels: tuple[float, float]) -> None:
    flood = Flood(settings)
    for seconds, cm in levels:
        flood.level(seconds, cm)
    flood.db.dispose()


def _case_acks(settings: ApiSettings, case_id: int) -> list[tuple[str, str, str]]:
    db = make_engine(settings.database_url)
    with Session(db) as session:
        found = [(a.actor, a.note, a.alert_status) for a in acknowledgements_for_case(session, case_id)]
    db.dispose()
    return found


def _alert(client: TestClient, token: str) -> dict[str, object]:
    items = client.get("/api/v1/alerts", headers=auth(token)).json()["items"]
    return next(a for a in items if a["fingerprint"] == FLOOD)


def test_an_acknowledged_alert_keeps_firing_and_its_note_shows_on_the_case(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    flood = Flood(settings)
    flood.level(0, 80)
    case_id = _alert(client, token)["case_id"]
    assert isinstance(case_id, int)
    current = f"/api/v1/alerts/{quote(FLOOD, safe='')}/acknowledgement"
    assert client.get(current, headers=auth(token)).json() is None

    done = client.post(ACK, json={"note": "泵车已出发"}, headers=auth(token))
    assert done.status_code == 201, done.text
    body = done.json()
    assert (body["actor"], body["note"], body["alert_status"], body["case_id"]) == (
        "op",
        "泵车已出发",
        "firing",
        case_id,
    )
    assert _alert(client, token)["status"] == "firing"  # acknowledged is not resolved
    assert client.get(current, headers=auth(token)).json()["note"] == "泵车已出发"
    assert _case_acks(settings, case_id) == [("op", "泵车已出发", "firing")]

    # The engine still decides: the water drains, the alert resolves; the note stays on the case.
    flood.level(30, 10)
    assert _alert(client, token)["status"] == "resolved"
    assert _case_acks(settings, case_id) == [("op", "泵车已出发", "firing")]
    # It fires again later: a new episode nobody has acknowledged yet.
    flood.level(7200, 90)
    assert _alert(client, token)["status"] == "firing"
    assert client.get(current, headers=auth(token)).json() is None
    flood.db.dispose()


def test_a_bad_note_or_an_unknown_alert_is_refused_and_nothing_is_written(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    _flood(settings, (0, 80))
    case_id = _alert(client, token)["case_id"]
    assert isinstance(case_id, int)
    for note in ("", "   ", "x" * 1001):
        refused = client.post(ACK, json={"note": note}, headers=auth(token))
        assert refused.status_code == 422, (note[:5], refused.text)
    assert client.post(ACK, json={"note": "ok", "extra": 1}, headers=auth(token)).status_code == 422
    unknown = client.post(
        f"/api/v1/alerts/{quote('flooding-water-level|zhuganxiang|nope', safe='')}/acknowledge",
        json={"note": "seen"},
        headers=auth(token),
    )
    assert unknown.status_code == 404 and "not found" in unknown.json()["detail"]
    assert client.post(ACK, json={"note": "seen"}).status_code == 401
    assert _case_acks(settings, case_id) == []


def _csrf(text: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', text)
    assert match is not None
    return match.group(1)


def test_the_console_form_acknowledges_and_shows_who_when_and_the_note(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    _flood(settings, (0, 80))
    csrf = _csrf(console_login(client).text)
    page = client.get("/console/alerts", params={"lang": "zh"}).text
    assert 'data-acknowledged="no"' in page and TEXT["zh"]["alm_ack"] in page
    forged = client.post(
        "/console/alerts/acknowledge", data={"csrf": "forged", "fingerprint": FLOOD, "note": "x"}
    )
    assert forged.status_code == 403
    blank = client.post(
        "/console/alerts/acknowledge", data={"csrf": csrf, "fingerprint": FLOOD, "note": "  "}
    )
    assert blank.status_code == 422 and TEXT["zh"]["alm_ack_empty"] in blank.text
    done = client.post(
        "/console/alerts/acknowledge",
        data={"csrf": csrf, "fingerprint": FLOOD, "note": "已通知物业抽水"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/alerts?done=ack"
    zh = client.get(done.headers["location"] + "&lang=zh").text
    assert 'data-acknowledged="yes"' in zh and 'data-status="firing"' in zh
    assert re.search(r"op 于 \d\d-\d\d \d\d:\d\d 确认：已通知物业抽水", zh), zh
    assert TEXT["zh"]["alm_ack_done"] in zh
    en = client.get("/console/alerts", params={"lang": "en"}).text
    assert re.search(r"op acknowledged at \d\d-\d\d \d\d:\d\d: 已通知物业抽水", en)


def test_acknowledging_is_scoped_like_the_alert(towns: Seeded, towns_api: TestClient) -> None:
    fingerprint = quote("flooding-water-level|zhuganxiang|wl-01", safe="")
    path = f"/api/v1/alerts/{fingerprint}/acknowledge"
    other_town = towns_api.post(path, json={"note": "seen"}, headers=auth(towns.tokens["town_b"]))
    assert other_town.status_code == 404  # another town's alert does not exist for them
    for role in ("building_head", "department_handler"):
        refused = towns_api.post(path, json={"note": "seen"}, headers=auth(towns.tokens[role]))
        assert refused.status_code == 403, role
    assert (
        towns_api.post(path, json={"note": "seen"}, headers=auth(towns.tokens["grid_worker"])).status_code
        == 201
    )
    assert (
        towns_api.post(path, json={"note": "on it"}, headers=auth(towns.tokens["town_operator"])).status_code
        == 201
    )
