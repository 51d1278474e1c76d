"""A gateway's buses through the API, and its desired config against what it reports running."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from alerts.fleet import record_gateway
from api import accounts
from api.settings import ApiSettings
from common.db import make_engine
from contract.messages import StateMessage
from registry import editing
from tests.api.conftest import auth

URL = "/api/v1/gateways/zhuganxiang/gw-01"
BUS = {"id": "rs485-1", "kind": "modbus_rtu", "port": "/dev/ttyUSB0"}


def _config(client: TestClient, token: str) -> dict[str, Any]:
    answer = client.get(f"{URL}/config", headers=auth(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_desired_and_reported_config_side_by_side(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    unmanaged = _config(client, token)
    assert (unmanaged["managed"], unmanaged["drift"], unmanaged["online"]) == (False, False, None)

    added = client.post(f"{URL}/buses", json=BUS, headers=auth(token))
    assert added.status_code == 201, added.text
    db = make_engine(settings.database_url)
    with Session(db) as session, session.begin():
        fields = {"id": "th-91", "type": "env.th@1", "grid": "g-north", "bus": "rs485-1", "unit": 1}
        editing.add_device(session, "zhuganxiang", "gw-01", fields, {"env.th@1"})
    desired = _config(client, token)
    assert desired["managed"] and desired["drift"] and desired["applied_hash"] is None
    assert desired["desired_config"]["buses"][0]["devices"] == [
        {"id": "th-91", "type": "env.th@1", "unit": 1}
    ]

    state: dict[str, Any] = {
        "online": True,
        "config_refused": {"hash": desired["desired_hash"], "reason": "no"},
    }
    record_gateway(db, "zhuganxiang", "gw-01", StateMessage.model_validate(state))
    refused = _config(client, token)
    assert (refused["drift"], refused["refusing"], refused["refusal_reason"]) == (True, True, "no")

    state = {"online": True, "config_applied": desired["desired_hash"]}
    record_gateway(db, "zhuganxiang", "gw-01", StateMessage.model_validate(state))
    in_sync = _config(client, token)
    assert (in_sync["drift"], in_sync["refusing"], in_sync["online"]) == (False, False, True)
    db.dispose()


def test_bus_refusals_name_the_field_and_jurisdiction_holds(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    assert client.get("/api/v1/gateways/zhuganxiang/gw-77/config", headers=auth(token)).status_code == 404
    missing = client.post("/api/v1/gateways/zhuganxiang/gw-77/buses", json=BUS, headers=auth(token))
    assert missing.status_code == 404
    no_port = client.post(f"{URL}/buses", json={"id": "b", "kind": "modbus_rtu"}, headers=auth(token))
    assert no_port.status_code == 422 and "serial port" in no_port.text
    db = make_engine(settings.database_url)
    worker = accounts.create_user(db, "gw", "pw", "grid_worker", community="zhuganxiang", grid="g-north")
    worker_token = accounts.issue_token(db, worker)
    db.dispose()
    assert client.post(f"{URL}/buses", json=BUS, headers=auth(worker_token)).status_code == 403
