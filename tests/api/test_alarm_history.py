"""Alert history per device and per rule (#23): every transition in words, linked from the device page,
filtered by device and rule, within the jurisdiction; the same over the API."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.console.i18n import TEXT
from api.settings import ApiSettings
from tests.api.conftest import auth, console_login
from tests.api.test_alarm_acknowledge import Flood
from tests.api.two_towns import Seeded


def _rows(page: str) -> list[str]:
    """The history table's transition kinds, newest first."""
    import re

    return re.findall(r'<tr data-kind="([a-z]+)"', page)


def test_a_devices_history_lists_its_transitions_in_words(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    flood = Flood(settings)
    for seconds, cm in ((0, 80), (30, 10), (60, 85), (90, 5), (120, 90)):
        flood.level(seconds, cm)
    flood.db.dispose()
    console_login(client)
    device_page = client.get("/console/devices/zhuganxiang/wl-01").text
    link = "/console/alerts/history?device=zhuganxiang/wl-01"
    assert f'href="{link}"' in device_page
    zh = client.get(link + "&lang=zh").text
    assert _rows(zh) == ["firing", "resolved", "firing", "resolved", "firing"]
    assert (
        "告警历史：水位 · " in zh
        and TEXT["zh"]["alm_tr_firing"] in zh
        and TEXT["zh"]["alm_tr_resolved"] in zh
    )
    assert 'href="/console/cases/1"' in zh
    en = client.get(link + "&lang=en").text
    assert "Alert history: Water level · " in en and "Fired" in en and "Cleared" in en
    # By rule: the flooding rule has these four; another rule none; another device none.
    by_rule = client.get("/console/alerts/history", params={"rule": "flooding-water-level"}).text
    assert _rows(by_rule) == ["firing", "resolved", "firing", "resolved", "firing"]
    assert _rows(client.get("/console/alerts/history", params={"rule": "gas-lel-high"}).text) == []
    other = client.get("/console/alerts/history", params={"device": "zhuganxiang/wl-02", "lang": "zh"}).text
    assert _rows(other) == [] and TEXT["zh"]["alm_no_history"] in other
    # The alerts page links each alert to its history.
    alerts = client.get("/console/alerts").text
    assert 'href="/console/alerts/history?device=zhuganxiang%2Fwl-01&amp;rule=flooding-water-level"' in alerts

    api = client.get("/api/v1/alerts/history", params={"device": "wl-01"}, headers=auth(token)).json()
    assert [t["kind"] for t in api] == ["firing", "resolved", "firing", "resolved", "firing"]
    assert {t["rule_id"] for t in api} == {"flooding-water-level"} and api[-1]["case_id"] == 1


def test_history_stays_within_the_jurisdiction(towns: Seeded, towns_api: TestClient) -> None:
    mine = towns_api.get("/api/v1/alerts/history", headers=auth(towns.tokens["town_b"])).json()
    assert mine and {t["community"] for t in mine} == {"xinhe"}
    theirs = towns_api.get(
        "/api/v1/alerts/history",
        params={"community": "zhuganxiang", "device": "wl-01"},
        headers=auth(towns.tokens["town_b"]),
    ).json()
    assert theirs == []
    page = console_login(towns_api, "town_b", "pw-town_b")
    assert page.status_code == 200
    text = towns_api.get("/console/alerts/history", params={"device": "zhuganxiang/wl-01"}).text
    assert (
        _rows(text) == []
        and "zhuganxiang/wl-01" not in text.split('id="alert-history"')[0].split("<select")[1]
    )
