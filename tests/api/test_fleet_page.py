"""The fleet page tells a planned stop from an outage, in both languages."""

from fastapi.testclient import TestClient

from alerts.fleet import record_gateway
from api.settings import ApiSettings
from common.db import make_engine
from contract import StateMessage
from tests.api.test_console_pages import sign_in


def test_a_planned_stop_reads_as_maintenance_and_a_lost_link_as_offline(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    db = make_engine(settings.database_url)
    stopped = StateMessage.model_validate({"online": False, "reason": "stopped"})
    record_gateway(db, "zhuganxiang", "gw-01", stopped)
    record_gateway(db, "zhuganxiang", "gw-02", StateMessage.model_validate({"online": False}))  # a will
    db.dispose()
    sign_in(client)
    zh = client.get("/console/fleet").text
    assert 'data-gateway="gw-01" data-online="False" data-stopped="True"' in zh
    assert 'data-gateway="gw-02" data-online="False" data-stopped="False"' in zh
    assert "已停止（计划内维护，不立单）" in zh and "网关计划停机：设备告警暂停" in zh
    assert zh.count("已停止（计划内维护，不立单）") == 1  # only gw-01; gw-02 lost its link
    en = client.get("/console/fleet", params={"lang": "en"}).text
    assert "stopped (planned maintenance, no case)" in en
    assert en.count("stopped (planned maintenance, no case)") == 1
