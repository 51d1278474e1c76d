"""Login throttling and the audit log of every write."""

from fastapi.testclient import TestClient

from api.settings import ApiSettings
from tests.api.conftest import audited, auth, console_login


def test_brute_force_is_throttled_but_a_typo_is_not(client: TestClient, token: str) -> None:
    assert console_login(client, password="typo").status_code == 401
    assert console_login(client).status_code == 200
    # Five failures from this client in five minutes (the typo counts, a success does not wipe it)...
    for _ in range(4):
        assert console_login(client, password="guess").status_code == 401
    refused = console_login(client)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    # The same client trying other names is held back too.
    assert console_login(client, "other", "x").status_code == 429


def test_every_write_is_audited_with_its_actor(client: TestClient, token: str, settings: ApiSettings) -> None:
    report = {"community": "zhuganxiang", "grid": "g-north", "category": "flooding", "description": "积水"}
    assert client.post("/api/v1/cases", json=report, headers=auth(token)).status_code == 201
    assert (
        client.post("/api/v1/cases/1/actions", json={"action": "pass"}, headers=auth(token)).status_code
        == 409
    )
    assert client.post("/api/v1/cases", json=report).status_code == 401
    client.get("/api/v1/cases", headers=auth(token))  # reads are not audited
    assert audited(settings) == [
        ("op", "POST", "/api/v1/cases", 201),
        ("op", "POST", "/api/v1/cases/1/actions", 409),
        ("anonymous", "POST", "/api/v1/cases", 401),
    ]


def test_metrics_count_requests_by_route_template(client: TestClient, token: str) -> None:
    client.get("/api/v1/cases/7", headers=auth(token))
    client.get("/api/v1/cases/8", headers=auth(token))
    body = client.get("/metrics/").text
    assert 'yiwang_api_requests_total{method="GET",route="/api/v1/cases/{case_id}",status="404"} 2.0' in body
    assert "yiwang_api_request_seconds_bucket" in body
