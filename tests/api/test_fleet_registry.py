"""The fleet page follows the registry: a gateway registered but never heard from reads *provisioned,
never seen*; one heard from but not registered reads *unknown gateway*, with its dead letters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from alerts.fleet import record_gateway
from api import accounts
from api.settings import ApiSettings
from common.db import make_engine
from contract import StateMessage
from contract.catalog import load_sensor_types
from ingest.deadletters import DeadLetter, DeadLetterStore
from registry import editing
from registry.desired import render
from tests.api.conftest import CONFIG, auth, console_login
from tests.api.test_console_pages import sign_in

UNKNOWN_DEVICE = "readings[0].device: unknown device 'th-9901' of gateway gw-77"


@pytest.fixture
def db(settings: ApiSettings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


def test_a_registered_gateway_never_heard_from_reads_provisioned_never_seen(
    client: TestClient, token: str
) -> None:
    registered = client.post(
        "/api/v1/gateways", json={"community": "zhuganxiang", "id": "gw-03"}, headers=auth(token)
    )
    assert registered.status_code == 201, registered.text
    sign_in(client)
    zh = client.get("/console/fleet").text
    row = zh.split('data-gateway="gw-03"')[1].split("</tr>")[0]
    assert "已登记，从未上线" in row
    en = client.get("/console/fleet", params={"lang": "en"}).text
    assert "provisioned, never seen" in en.split('data-gateway="gw-03"')[1].split("</tr>")[0]


def test_a_gateway_heard_from_but_not_registered_is_an_unknown_gateway_with_its_dead_letters(
    client: TestClient, token: str, db: Engine
) -> None:
    record_gateway(db, "zhuganxiang", "gw-77", StateMessage.model_validate({"online": True}))
    DeadLetterStore(db).add_many(
        [
            DeadLetter("yiwang/v1/zhuganxiang/gw-77/telemetry", UNKNOWN_DEVICE, b'{"seq": %d}' % n)
            for n in range(4)
        ]
        + [
            DeadLetter("yiwang/v1/zhuganxiang/gw-88/event", "not JSON: Expecting value", b"x"),
            DeadLetter("yiwang/v1/zhuganxiang/gw-01/telemetry", UNKNOWN_DEVICE, b"{}"),  # registered
            DeadLetter("not/a/topic", "topic: ingest takes telemetry and events", b""),
        ]
    )
    sign_in(client)
    zh = client.get("/console/fleet").text
    assert "<h2>未登记网关</h2>" in zh
    unknown = zh.split('id="unknown-gateways"')[1].split("</table>")[0]
    gw77 = unknown.split('data-unknown-gateway="gw-77"')[1].split("</tr>")[0]
    assert "zhuganxiang/gw-77" in gw77 and "未登记网关 · 在线" in gw77 and "共 4 条" in gw77
    assert gw77.count("th-9901") == 3  # the latest three letters, with their reasons
    assert 'data-unknown-gateway="gw-88"' in unknown
    assert 'data-unknown-gateway="gw-01"' not in unknown and "not/a/topic" not in unknown
    assert 'data-gateway="gw-77"' not in zh  # not listed among the registered gateways
    en = client.get("/console/fleet", params={"lang": "en"}).text
    assert "<h2>Unknown gateways</h2>" in en and "unknown gateway · online" in en and "4 in all" in en


def test_unknown_gateways_are_shown_in_their_communitys_jurisdiction_only(
    client: TestClient, settings: ApiSettings, db: Engine
) -> None:
    record_gateway(db, "zhuganxiang", "gw-77", StateMessage.model_validate({"online": True}))
    accounts.create_user(db, "far", "pw-far", "town_operator", town="nanzhang")
    accounts.create_user(db, "near", "pw-near", "town_operator", town="yuehe")
    console_login(client, "far", "pw-far")
    assert 'data-unknown-gateway="gw-77"' not in client.get("/console/fleet").text
    console_login(client, "near", "pw-near")
    assert 'data-unknown-gateway="gw-77"' in client.get("/console/fleet").text


def test_no_unknown_gateways_no_section(client: TestClient, token: str) -> None:
    sign_in(client)
    assert "未登记网关" not in client.get("/console/fleet").text


def test_the_fleet_page_flags_a_gateway_that_does_not_run_the_registrys_configuration(
    client: TestClient, token: str, db: Engine
) -> None:
    types = {p.id for p in load_sensor_types(CONFIG)}
    with Session(db) as session, session.begin():
        editing.add_bus(
            session, "zhuganxiang", "gw-01", {"id": "rs485", "kind": "modbus_rtu", "port": "/dev/ttyS1"}
        )
        fields = {"id": "wl-19", "type": "water.level@1", "grid": "g-north", "bus": "rs485", "unit": 7}
        editing.add_device(session, "zhuganxiang", "gw-01", fields, types)
    with Session(db) as session:
        desired = render(session, "zhuganxiang", "gw-01")
    assert desired is not None

    def config_cell(page: str, gateway: str) -> str:
        row = page.split(f'data-gateway="{gateway}"')[1].split("</tr>")[0]
        return row.rsplit("<td", 1)[1]

    record_gateway(db, "zhuganxiang", "gw-01", StateMessage.model_validate({"online": True}))
    sign_in(client)
    page = client.get("/console/fleet").text
    assert 'data-drift="True"' in config_cell(page, "gw-01") and "待网关确认" in config_cell(page, "gw-01")
    assert "本地配置文件" in config_cell(page, "gw-02")  # no bus in the registry: its own file rules
    refused = {"hash": desired.hash, "reason": "unknown sensor type water.level@1"}
    record_gateway(
        db, "zhuganxiang", "gw-01", StateMessage.model_validate({"online": True, "config_refused": refused})
    )
    en = client.get("/console/fleet", params={"lang": "en"}).text
    assert "the gateway refused the registry&#39;s configuration: unknown sensor type" in config_cell(
        en, "gw-01"
    )
    state = {"online": True, "config_applied": desired.hash}
    record_gateway(db, "zhuganxiang", "gw-01", StateMessage.model_validate(state))
    assert "已同步" in config_cell(client.get("/console/fleet", params={"lang": "zh"}).text, "gw-01")
