"""Silences from the console form (#23): a rule and a device picker within the jurisdiction, a duration
picker (1 h, 4 h, 1 d, 7 d, custom) and the reason, correctly labelled; refusals say why and keep what
was typed; silences read as sentences."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from api.console.i18n import TEXT
from api.settings import ApiSettings
from tests.api.conftest import auth, console_login
from tests.api.two_towns import Seeded


def _csrf(text: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', text)
    assert match is not None
    return match.group(1)


def _silences(client: TestClient, token: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = client.get("/api/v1/silences", headers=auth(token)).json()
    return found


def _hours_left(silence: dict[str, object]) -> float:
    ends = datetime.fromisoformat(str(silence["ends_at"]))
    return (ends - datetime.now(UTC)).total_seconds() / 3600


def test_the_form_offers_pickers_and_labels_the_duration_as_a_silence(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    console_login(client)
    for lang in ("zh", "en"):
        page = client.get("/console/alerts", params={"lang": lang}).text
        form = page[page.index('id="new-silence"') :]
        words = TEXT[lang]
        assert words["alm_duration"] in form and words["hours"] not in form  # not "extra hours"
        assert [words[f"alm_dur_{d}"] for d in ("1", "4", "24", "168", "custom")] == re.findall(
            r'<option value="(?:1|4|24|168|custom)"[^>]*>([^<]+)<', form
        )
        # Devices by type and place, rules by name; their ids only in the values.
        assert '<option value="zhuganxiang/wl-01">' in form
        assert ">水位 · " in form if lang == "zh" else ">Water level · " in form
        assert '<option value="flooding-water-level">' in form


def test_a_preset_and_a_custom_duration_make_silences_that_read_as_sentences(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    csrf = _csrf(console_login(client).text)
    made = client.post(
        "/console/silences",
        data={
            "csrf": csrf,
            "device": "zhuganxiang/wl-01",
            "rule": "flooding-water-level",
            "duration": "4",
            "hours": "",
            "comment": "施工",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303 and made.headers["location"] == "/console/alerts?done=silence"
    [silence] = _silences(client, token)
    assert silence["matchers"] == {
        "community": "zhuganxiang",
        "device": "wl-01",
        "rule": "flooding-water-level",
    }
    assert 3.9 < _hours_left(silence) <= 4.0 and silence["comment"] == "施工"
    custom = client.post(
        "/console/silences",
        data={"csrf": csrf, "rule": "gas-anomaly", "duration": "custom", "hours": "1.5", "comment": "检修"},
    )
    assert custom.status_code == 200
    hours = sorted(round(_hours_left(s), 1) for s in _silences(client, token))
    assert hours == [1.5, 4.0]
    text = client.get("/console/alerts", params={"lang": "zh"}).text
    sentences = re.findall(r'class="silence-sentence">([^<]+)<', text)
    assert any("设备「水位 · " in s and "规则「" in s and "原因：施工" in s for s in sentences), sentences
    week = client.post(
        "/console/silences", data={"csrf": csrf, "device": "zhuganxiang/wl-02", "duration": "168"}
    )
    assert week.status_code == 200
    assert max(_hours_left(s) for s in _silences(client, token)) > 167.9


def test_a_bad_duration_or_an_empty_form_says_why_and_keeps_what_was_typed(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    csrf = _csrf(console_login(client).text)
    for duration, hours in (
        ("custom", "abc"),
        ("custom", "0"),
        ("custom", "721"),
        ("custom", "nan"),
        ("3", ""),
    ):
        refused = client.post(
            "/console/silences",
            data={
                "csrf": csrf,
                "device": "zhuganxiang/wl-01",
                "duration": duration,
                "hours": hours,
                "comment": "排水泵更换",
            },
            params={"lang": "en"},
        )
        assert refused.status_code == 422, (duration, hours)
        assert TEXT["en"]["alm_bad_duration"] in refused.text
        assert 'value="排水泵更换"' in refused.text  # the reason typed is still there
        assert '<option value="zhuganxiang/wl-01" selected>' in refused.text
    empty = client.post("/console/silences", data={"csrf": csrf, "duration": "1"}, params={"lang": "zh"})
    assert empty.status_code == 422 and TEXT["zh"]["sil_incomplete"] in empty.text
    assert _silences(client, token) == []


def test_the_pickers_and_the_form_stay_within_the_jurisdiction(towns: Seeded, towns_api: TestClient) -> None:
    page = console_login(towns_api, "town_b", "pw-town_b")
    csrf = _csrf(page.text)
    form = towns_api.get("/console/alerts").text
    assert '<option value="xinhe/xwl-01">' in form and "zhuganxiang/wl-01" not in form
    before = len(_silences(towns_api, towns.tokens["admin"]))
    refused = towns_api.post(
        "/console/silences",
        data={"csrf": csrf, "device": "zhuganxiang/wl-01", "duration": "1", "comment": "x"},
        params={"lang": "zh"},
    )
    assert refused.status_code == 404 and TEXT["zh"]["alm_unknown_device"] in refused.text
    assert len(_silences(towns_api, towns.tokens["admin"])) == before
    towns_api.post("/console/logout", data={"csrf": csrf})
    # A grid worker sees the form's page but may not silence.
    page = console_login(towns_api, "grid_worker", "pw-grid_worker")
    assert 'id="new-silence"' not in towns_api.get("/console/alerts").text
    refused = towns_api.post(
        "/console/silences",
        data={"csrf": _csrf(page.text), "device": "zhuganxiang/wl-01", "duration": "1"},
        params={"lang": "zh"},
    )
    assert refused.status_code == 403 and TEXT["zh"]["sil_refused"] in refused.text
    towns_api.post("/console/logout", data={"csrf": _csrf(page.text)})
