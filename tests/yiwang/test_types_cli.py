"""`yiwang types test`: a captured answer decoded by the agent's own decoders, field by field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from yiwang.cli import app

CONFIG = Path(__file__).resolve().parents[2] / "config"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["types", "test", *args, "--config-dir", str(CONFIG)])
    return result.exit_code, result.stdout, result.stderr


def test_an_rtu_capture_prints_every_field_with_unit_range_and_registers() -> None:
    # unit 1, input registers 1-2: 0x00D7 = 215 tenths of a degree, 0x0226 = 550 tenths of %RH, CRC 0x06CB.
    code, out, _ = run("env.th@1", "--modbus-response", "01 04 04 00 D7 02 26 CB 06")
    assert code == 0
    assert "Modbus RTU response from unit 1, input 1+2" in out
    lines = out.splitlines()
    temperature = next(line for line in lines if line.strip().startswith("temperature"))
    assert "21.5 °C" in temperature and "in range (-40 .. 85)" in temperature
    assert "input 1 = 0x00D7 (int16)" in temperature
    humidity = next(line for line in lines if line.strip().startswith("humidity"))
    assert "55.0 %RH" in humidity and "input 2 = 0x0226 (uint16)" in humidity


def test_a_value_out_of_range_is_flagged_and_fails() -> None:
    code, out, _ = run(str(CONFIG / "sensor-types" / "env.th.yaml"), "--modbus-response", "04 04 00 D7 03 E9")
    assert code == 1
    assert "100.1 %RH  OUT OF RANGE (0 .. 100)" in out


def test_a_tcp_frame_and_a_negative_value() -> None:
    code, out, _ = run("env.th@1", "--modbus-response", "00 01 00 00 00 07 05 04 04 FF D7 00 00")
    assert code == 0 and "Modbus TCP response from unit 5" in out and "-4.1 °C" in out


def test_a_line_capture_goes_through_the_agents_parser() -> None:
    line = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
    code, out, _ = run("geo.gps@1", "--line", line)
    assert code == 0
    assert "latitude" in out and "48.1173 °" in out and "column 2" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("env.th@1", "--modbus-response", "01 04 0G"), "not hexadecimal: 'G'"),
        (("env.th@1", "--modbus-response", "01 04 04 00 D"), "a byte is two digits"),
        (("env.th@1", "--modbus-response", "00" * 261), "longer than any Modbus frame"),
        (("env.th@1", "--modbus-response", "01 04 04 00 D7 02 26 CA B1"), "CRC is CAB1, not CB06"),
        (("env.th@1", "--modbus-response", "01 04 04 00 D7 02 26"), "without its 2-byte CRC"),
        (("env.th@1", "--modbus-response", "01 04 08 00 D7 02 26 CB 06"), "its byte count says 8"),
        (("env.th@1", "--modbus-response", "04 02 00 D7"), "cannot tell where a 1-register input answer"),
        (("env.th@1", "--modbus-response", "01 84 02 C2 C1"), "exception code 2 (illegal data address)"),
        (("geo.gps@1", "--modbus-response", "04 02 00 D7"), "geo.gps@1 has no modbus protocol section"),
        (("air.pm@1", "--line", "12,30,x"), "the agent would drop this line: pm10: 'x' is not a number"),
        (("env.th@9", "--line", "1"), "no sensor type env.th@9 in"),
        (("missing/profile.yaml", "--line", "1"), "no profile file missing/profile.yaml"),
        (("env.th@1",), "give exactly one of --modbus-response HEX or --line TEXT"),
    ],
)
def test_bad_input_is_refused_with_what_to_fix(args: tuple[str, ...], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert message in err
    assert out == ""


def test_start_places_an_unplanned_read() -> None:
    code, out, _ = run("env.th@1", "--modbus-response", "04 02 02 26", "--start", "2")
    assert code == 0
    assert "55.0 %RH" in out
    assert "not in this response" in next(line for line in out.splitlines() if "temperature" in line)
