"""5G modem health: AT answer parsers as tables, then the source against an AT emulator on a pty."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from contract.catalog import load_model
from contract.profiles import SensorTypeProfile
from edge.gateway_config import ModemConfig
from edge.sources.at_parse import parse_cops, parse_creg, parse_csq, parse_qeng, parse_qgdcnt
from edge.sources.base import SourceBatch
from edge.sources.modem import ModemSource
from tests.edge.sources.emulators import ModemEmulator, pty_pair

PROFILE = load_model(
    SensorTypeProfile, Path(__file__).resolve().parents[3] / "config" / "sensor-types" / "gateway.modem.yaml"
)


@pytest.mark.parametrize(
    ("parse", "lines", "expected"),
    [
        (parse_csq, ["+CSQ: 24,99"], {"rssi_dbm": -65.0}),
        (parse_csq, ["+CSQ: 99,99"], {}),
        (parse_creg, ["+CREG: 0,1"], {"registered": True}),
        (parse_creg, ["+CREG: 0,5"], {"registered": True}),
        (parse_creg, ["+CREG: 0,2"], {"registered": False}),
        (parse_cops, ['+COPS: 0,0,"CHN-UNICOM",13'], {"operator": "CHN-UNICOM"}),
        (parse_cops, ["+COPS: 0"], {}),
        (parse_qgdcnt, ["+QGDCNT: 10,20"], {"tx_bytes": 10, "rx_bytes": 20}),
        (
            parse_qeng,
            [
                '+QENG: "servingcell","NOCONN","NR5G-SA","TDD",460,00,1A2B3C4D5,301,5A0B,504990,41,12,-95,-11,14,1,-'
            ],
            {
                "access": "NR5G-SA",
                "cell_id": "1A2B3C4D5",
                "rsrp_dbm": -95.0,
                "rsrq_db": -11.0,
                "sinr_db": 14.0,
            },
        ),
        (
            parse_qeng,
            [
                '+QENG: "servingcell","CONNECT","LTE","FDD",460,01,5F1EA15,12,1650,3,5,5,DE10,-101,-9,-70,8,9,230,-'
            ],
            {"access": "LTE", "cell_id": "5F1EA15", "rsrp_dbm": -101.0, "rsrq_db": -9.0, "sinr_db": 8.0},
        ),
        (
            parse_qeng,
            [
                '+QENG: "servingcell","NOCONN"',
                '+QENG: "LTE","FDD",460,00,8F2B10,105,1300,3,5,5,1A2B,-98,-10,-66,10,15,-,-',
                '+QENG: "NR5G-NSA",460,00,688,-88,20,-11,627264,78,12,1',
            ],
            {"access": "NR5G-NSA", "cell_id": "8F2B10", "rsrp_dbm": -88.0, "rsrq_db": -11.0, "sinr_db": 20.0},
        ),
        (parse_qeng, ['+QENG: "servingcell","SEARCH"'], {}),
    ],
)
def test_at_answers(parse: object, lines: list[str], expected: dict[str, object]) -> None:
    assert parse(lines) == expected  # type: ignore[operator]


@pytest.mark.integration
def test_modem_health_from_an_at_emulator() -> None:
    with pty_pair() as pty, ModemEmulator(pty.device) as modem:
        source = ModemSource(ModemConfig(port=pty.gateway, poll_s=0.05, timeout_s=0.5), PROFILE)

        async def scenario() -> list[SourceBatch]:
            try:
                first = await source.read()
                modem.silent = True
                hung = await source.read()
                modem.silent = False
                return [first, hung, await source.read()]
            finally:
                await source.aclose()

        first, hung, back = asyncio.run(scenario())
    assert first.readings[0].device == "modem"
    assert first.readings[0].values == {
        "access": "NR5G-SA",
        "cell_id": "1A2B3C4D5",
        "rsrp_dbm": -95.0,
        "rsrq_db": -11.0,
        "sinr_db": 14.0,
        "rssi_dbm": -65.0,
        "registered": True,
        "operator": "CHINA MOBILE",
        "tx_bytes": 123456,
        "rx_bytes": 7890123,
    }
    assert [e.kind for e in hung.events] == ["device.unavailable"] and not hung.readings
    assert [e.kind for e in back.events] == ["device.available"]
    assert back.readings[0].values["rsrp_dbm"] == -95.0
    assert source.state is not None and source.state.rsrp == -95.0 and source.state.sinr == 14.0


@pytest.mark.integration
def test_a_modem_without_data_counters_still_reports_the_rest() -> None:
    with pty_pair() as pty, ModemEmulator(pty.device) as modem:
        del modem.answers["AT+QGDCNT?"]  # answers ERROR, as modems without the command do
        source = ModemSource(ModemConfig(port=pty.gateway, timeout_s=0.5), PROFILE)

        async def scenario() -> SourceBatch:
            try:
                return await source.read()
            finally:
                await source.aclose()

        batch = asyncio.run(scenario())
    assert "tx_bytes" not in batch.readings[0].values
    assert batch.readings[0].values["registered"] is True
