"""The console's device page over HTTP: profile, place, health, charts with axes and thresholds, alerts
and cases, in both languages; the chart for another range; and jurisdiction (another grid's worker)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from alerts.intake import CaseBook
from alerts.rules import load_rules
from api import accounts
from api.console.time_chart import time_ticks
from api.routes.devices import CHART_POINTS, chart_window_s
from api.settings import ApiSettings
from cases.policy import CasePolicy
from common.db import make_engine
from series.factory import open_store
from series.store import Point
from tests.alerts.scenario import CONFIG, Scenario
from tests.api.conftest import console_login

PAGE = "/console/devices/zhuganxiang/wl-01"
TAGS = {"community": "zhuganxiang", "gateway": "gw-01", "device": "wl-01", "grid": "g-north"}


def seed(settings: ApiSettings) -> None:
    now = int(datetime.now(UTC).timestamp() * 1000)
    store = open_store(settings.series_url)
    store.write(
        [Point("water.level", TAGS, {"level_cm": float(i % 40)}, now - 600_000 * i) for i in range(200)]
    )
    store.close()
    db = make_engine(settings.database_url)
    policy = CasePolicy.load(CONFIG)
    CaseBook(db, policy, timedelta(minutes=1)).apply(
        Scenario(load_rules(CONFIG, policy.categories)).reading(0, "wl-01", level_cm=80)
    )
    db.dispose()


def visible_text(html: str) -> str:
    body = html.split("<main>", 1)[1]
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


def test_device_page_in_both_languages(client: TestClient, token: str, settings: ApiSettings) -> None:
    seed(settings)
    console_login(client)
    zh = client.get(PAGE, params={"lang": "zh"})
    assert zh.status_code == 200
    for words in (
        "水位",
        "竹竿巷社区",
        "北区网格",
        "运行中",
        "24 小时",
        "7 天",
        "严重告警线：不低于 50 cm",
        "告警中",
    ):
        assert words in zh.text, words
    en = client.get(PAGE, params={"lang": "en"}).text
    for words in ("Water level (cm)", "In service", "30 days", "Custom", "Firing", "Cases"):
        assert words in en, words
    # A chart with real axes: time labels, value labels and the rule's threshold line.
    assert 'class="x-label"' in en and 'class="y-label"' in en and 'class="threshold"' in en
    assert re.search(r'class="x-label"[^>]*>\d\d:\d\d<', en)
    for html in (zh.text, en):
        text = visible_text(html)
        for raw in (
            "None",
            "DeviceState.",
            "g-north",
            "water.level@1",
            "level_cm",
            "{'",
            "dev_",
            "flooding-water",
        ):
            assert raw not in text, raw
    assert re.search(r'href="/console/cases/\d+"', en)


def test_chart_follows_the_range(client: TestClient, token: str, settings: ApiSettings) -> None:
    seed(settings)
    console_login(client)
    now = int(datetime.now(UTC).timestamp() * 1000)
    day = client.get(
        f"{PAGE}/aggregate.svg", params={"field": "level_cm", "since": now - 86_400_000, "until": now}
    )
    week = client.get(
        f"{PAGE}/aggregate.svg", params={"field": "level_cm", "since": now - 7 * 86_400_000, "until": now}
    )
    assert day.status_code == week.status_code == 200 and day.headers["content-type"].startswith(
        "image/svg+xml"
    )
    assert 'data-window="300"' in day.text and 'data-window="1800"' in week.text
    labels = [re.findall(r'class="x-label"[^>]*>([^<]+)<', r.text) for r in (day, week)]
    assert all(re.fullmatch(r"\d\d:\d\d", label) for label in labels[0])
    assert all(re.fullmatch(r"\d\d-\d\d", label) for label in labels[1])
    refused = client.get(
        f"{PAGE}/aggregate.svg", params={"field": "level_cm", "since": now, "until": now + 1}
    )
    assert refused.status_code == 422
    assert (
        client.get(
            f"{PAGE}/aggregate.svg", params={"field": "nope", "since": 0, "until": 86_400_000}
        ).status_code
        == 404
    )


def test_another_grids_worker_gets_404(client: TestClient, token: str, settings: ApiSettings) -> None:
    db = make_engine(settings.database_url)
    accounts.create_user(db, "south", "south-pass", "grid_worker", community="zhuganxiang", grid="g-south")
    db.dispose()
    console_login(client, "south", "south-pass")
    answer = client.get(PAGE)
    assert answer.status_code == 404 and "wl-01" not in visible_text(answer.text)
    assert (
        client.get(
            f"{PAGE}/aggregate.svg", params={"field": "level_cm", "since": 0, "until": 86_400_000}
        ).status_code
        == 404
    )
    assert client.get("/console/devices/nowhere/wl-01").status_code == 404


def test_fleet_and_case_pages_link_to_the_device(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    seed(settings)
    console_login(client)
    assert f'href="{PAGE}"' in client.get("/console/fleet").text
    assert f'href="{PAGE}"' in client.get("/console/cases/1").text
    assert f'href="{PAGE}"' in client.get("/console/alerts").text


def test_any_range_gives_at_most_500_windows() -> None:
    for span_s in (60, 3600, 86_400, 7 * 86_400, 30 * 86_400, 400 * 86_400, 1234567):
        window = chart_window_s(span_s * 1000)
        assert -(-span_s // window) <= CHART_POINTS
    tz = ZoneInfo("Asia/Shanghai")
    ticks = time_ticks(0, 86_400_000, tz)  # 1970-01-01 08:00 to 1970-01-02 08:00 in Shanghai
    assert [label for _, label in ticks] == ["12:00", "18:00", "00:00", "06:00"]  # round local hours
