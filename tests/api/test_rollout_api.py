"""Agent rollouts through the API: canary first, widened only once the canary runs the version,
stopped by itself when the canary rolls back; bad input refused with what to fix (SQLite and
PostgreSQL through ``api_database_url``)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from alerts.fleet import record_gateway
from api.settings import ApiSettings
from common.db import make_engine
from contract import StateMessage

C = "zhuganxiang"


def report(settings: ApiSettings, gateway: str, agent: str, upgrade: dict[str, Any] | None = None) -> None:
    db = make_engine(settings.database_url)
    body: dict[str, Any] = {"online": True, "ts": 1_764_183_600_000, "agent": agent}
    if upgrade:
        body["upgrade"] = upgrade
    record_gateway(db, C, gateway, StateMessage.model_validate(body))
    db.dispose()


def upgrade(client: TestClient, token: str, **body: Any) -> Any:
    return client.post("/api/v1/fleet/upgrade", json=body, headers={"Authorization": f"Bearer {token}"})


def versions(client: TestClient, token: str) -> dict[str, Any]:
    answer = client.get("/api/v1/fleet/versions", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    out: dict[str, Any] = answer.json()
    return out


def gateway(out: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in out["gateways"] if g["gateway"] == name)


def test_a_rollout_goes_canary_first_then_to_all(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    report(settings, "gw-01", "0.1.0")
    report(settings, "gw-02", "0.1.0")
    started = upgrade(client, token, version="0.2.0", canary=["gw-01"])
    assert started.status_code == 200, started.text
    assert started.json()["rollout"]["status"] == "canary" and started.json()["told"] == 1
    out = versions(client, token)
    assert gateway(out, "gw-01")["desired"] == "0.2.0" and gateway(out, "gw-01")["phase"] == "pending"
    assert gateway(out, "gw-02")["desired"] is None and gateway(out, "gw-02")["phase"] == "unmanaged"

    early = upgrade(client, token, version="0.2.0", all=True)
    assert early.status_code == 409
    assert "canary zhuganxiang/gw-01 has not reported 0.2.0 running yet" in early.json()["detail"]
    assert gateway(versions(client, token), "gw-02")["desired"] is None  # nobody else told

    report(settings, "gw-01", "0.2.0", {"attempt": "0.2.0", "outcome": "confirmed", "reason": "connected"})
    half = upgrade(client, token, version="0.2.0", percent=50)
    assert half.status_code == 200, half.text
    assert half.json()["told"] == 0 and half.json()["rollout"]["status"] == "rolling"  # gw-01 is the half
    done = upgrade(client, token, version="0.2.0", all=True)
    assert done.status_code == 200 and done.json()["told"] == 1
    assert done.json()["rollout"]["status"] == "done"
    out = versions(client, token)
    assert gateway(out, "gw-01")["phase"] == "current" and gateway(out, "gw-01")["running"] == "0.2.0"
    assert gateway(out, "gw-02")["desired"] == "0.2.0" and gateway(out, "gw-02")["phase"] == "pending"


def test_a_canary_that_rolls_back_stops_the_rollout(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    report(settings, "gw-01", "0.1.0")
    assert upgrade(client, token, version="0.3.0", canary=["zhuganxiang/gw-01"]).status_code == 200
    reason = "not healthy within 120 s: no answer at http://127.0.0.1:9108/metrics"
    report(settings, "gw-01", "0.1.0", {"attempt": "0.3.0", "outcome": "rolled_back", "reason": reason})
    out = versions(client, token)
    assert out["rollouts"][0]["status"] == "stopped"
    assert out["rollouts"][0]["stopped_reason"] == f"zhuganxiang/gw-01 rolled back 0.3.0: {reason}"
    assert (
        gateway(out, "gw-01")["phase"] == "rolled_back" and gateway(out, "gw-01")["outcome"] == "rolled_back"
    )
    refused = upgrade(client, token, version="0.3.0", all=True)
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith("the rollout of 0.3.0 stopped: zhuganxiang/gw-01 rolled back")
    assert gateway(versions(client, token), "gw-02")["desired"] is None  # the rest were never told


def test_bad_requests_say_what_to_fix(client: TestClient, token: str, login: Any) -> None:
    bad_version = upgrade(client, token, version="../0.2", canary=["gw-01"])
    assert bad_version.status_code == 422 and "version" in bad_version.text
    both = upgrade(client, token, version="0.2.0", canary=["gw-01"], all=True)
    assert both.status_code == 422 and "exactly one of canary, all, percent" in both.text
    unknown = upgrade(client, token, version="0.2.0", canary=["gw-99"])
    assert unknown.status_code == 409 and "no gateway 'gw-99' in the registry" in unknown.json()["detail"]
    no_rollout = upgrade(client, token, version="0.9.0", percent=10)
    assert no_rollout.status_code == 409 and "start with --canary" in no_rollout.json()["detail"]
    too_many = upgrade(client, token, version="0.2.0", canary=[f"gw-{i}" for i in range(21)])
    assert too_many.status_code == 422
    worker = login("li.na", "grid_worker", community=C, grid="g-north")
    assert upgrade(client, worker, version="0.2.0", canary=["gw-01"]).status_code == 403
    assert versions(client, token)["rollouts"] == []  # nothing was stored by any of them
