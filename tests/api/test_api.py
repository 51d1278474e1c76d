"""The HTTP API on the embedded defaults (SQLite stores), through FastAPI's test client."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.settings import ApiSettings
from series.factory import open_store
from series.store import Point
from tests.api.conftest import auth, console_login
from tests.factories import open_flooding_cases


@pytest.mark.parametrize("path", ["/api/v1/cases", "/api/v1/cases/1", "/api/v1/devices/wl-01/telemetry"])
def test_every_api_route_requires_a_bearer_token(client: TestClient, token: str, path: str) -> None:
    assert client.get(path).status_code == 401
    response = client.get(path, headers=auth("yw_not-a-token"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_cases_newest_first_with_deadline(client: TestClient, token: str, settings: ApiSettings) -> None:
    t0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    open_flooding_cases(settings.database_url, [t0, t0 + timedelta(hours=2)])
    body = client.get("/api/v1/cases", headers=auth(token)).json()
    assert body["total"] == 2
    first, second = body["items"]
    assert first["id"] > second["id"]
    assert first["category"] == "flooding" and first["grid"] == "g-north" and first["state"] == "NEW"
    assert datetime.fromisoformat(first["deadline"]) - datetime.fromisoformat(
        first["opened_at"]
    ) == timedelta(hours=2)  # flooding 4 h, halved: a critical alert opens an urgent case
    paged = client.get(
        "/api/v1/cases", params={"limit": 1, "offset": 1, "open": True}, headers=auth(token)
    ).json()
    assert [c["id"] for c in paged["items"]] == [second["id"]]
    assert (
        client.get("/api/v1/cases", params={"category": "gas_leak"}, headers=auth(token)).json()["total"] == 0
    )


def test_case_detail_and_not_found(client: TestClient, token: str, settings: ApiSettings) -> None:
    open_flooding_cases(settings.database_url, [datetime(2026, 7, 1, 8, 0, tzinfo=UTC)])
    detail = client.get("/api/v1/cases/1", headers=auth(token)).json()
    assert [e["action"] for e in detail["events"]] == ["opened", "alert_resolved"]
    assert detail["evidence"][0]["observed"] == {"level_cm": 70}
    missing = client.get("/api/v1/cases/999", headers=auth(token))
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("params", "code"), [({"limit": 0}, 422), ({"state": "SLEEPING"}, 422), ({"offset": -1}, 422)]
)
def test_bad_queries_are_422_not_500(
    client: TestClient, token: str, params: dict[str, object], code: int
) -> None:
    assert client.get("/api/v1/cases", params=params, headers=auth(token)).status_code == code


def test_telemetry_of_a_device(client: TestClient, token: str, settings: ApiSettings) -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    store = open_store(settings.series_url)
    tags = {"community": "zhuganxiang", "gateway": "gw-01", "device": "wl-01", "grid": "g-north"}
    store.write(
        [Point("water.level", tags, {"level_cm": float(v)}, now_ms - 1000 * (10 - v)) for v in range(10)]
    )
    store.close()
    body = client.get(
        "/api/v1/devices/wl-01/telemetry", params={"since": now_ms - 5500}, headers=auth(token)
    ).json()
    assert body["type"] == "water.level@1" and body["fields"]["level_cm"]["unit"] == "cm"
    assert [p["values"]["level_cm"] for p in body["points"]] == [5.0, 6.0, 7.0, 8.0, 9.0]
    iso = datetime.fromtimestamp((now_ms - 2500) / 1000, UTC).isoformat()
    assert (
        len(
            client.get("/api/v1/devices/wl-01/telemetry", params={"since": iso}, headers=auth(token)).json()[
                "points"
            ]
        )
        == 2
    )
    assert client.get("/api/v1/devices/nope/telemetry", headers=auth(token)).status_code == 404
    assert (
        client.get(
            "/api/v1/devices/wl-01/telemetry", params={"since": "yesterday"}, headers=auth(token)
        ).status_code
        == 422
    )


def test_healthz_names_every_component(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 503  # no broker, no ingest, alerts or cases heartbeats here
    components = response.json()["components"]
    assert set(components) == {"database", "series_store", "broker", "ingest", "alerts", "cases"}
    assert components["database"]["ok"] and components["series_store"]["ok"]
    assert not components["broker"]["ok"] and components["ingest"]["detail"] == "never seen"


def test_console_login_and_case_list(client: TestClient, token: str, settings: ApiSettings) -> None:
    open_flooding_cases(settings.database_url, [datetime.now(UTC)])
    assert client.get("/console", follow_redirects=False).headers["location"] == "/console/login"
    bad = console_login(client, password="wrong")
    assert bad.status_code == 401 and "用户名或密码错误" in bad.text
    ok = console_login(client)
    assert ok.status_code == 200 and "积水内涝" in ok.text and 'data-category="flooding"' in ok.text
    assert "Open cases" in client.get("/console", params={"lang": "en"}).text


def test_telemetry_aggregates_per_window(client: TestClient, token: str, settings: ApiSettings) -> None:
    hour = 3_600_000
    start = (int(datetime.now(UTC).timestamp() * 1000) // hour - 3) * hour
    store = open_store(settings.series_url)
    tags = {"community": "zhuganxiang", "gateway": "gw-01", "device": "wl-01", "grid": "g-north"}
    store.write(
        [
            Point("water.level", tags, {"level_cm": float(v)}, start + i * 600_000)
            for i, v in enumerate(range(12))
        ]
    )
    store.close()
    params = {"field": "level_cm", "fn": "max", "window_s": 3600, "since": start, "until": start + 2 * hour}
    body = client.get("/api/v1/devices/wl-01/telemetry/aggregate", params=params, headers=auth(token)).json()
    assert [b["value"] for b in body["buckets"]] == [5.0, 11.0] and body["unit"] == "cm"
    assert (
        client.get(
            "/api/v1/devices/wl-01/telemetry/aggregate",
            params=params | {"field": "colour"},
            headers=auth(token),
        ).status_code
        == 422
    )
    assert (
        client.get(
            "/api/v1/devices/wl-01/telemetry/aggregate", params=params | {"fn": "median"}, headers=auth(token)
        ).status_code
        == 422
    )
