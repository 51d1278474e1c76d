"""Protocol sections of sensor-type profiles: derived at load, wrong ones fail with file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract import ContractError
from contract.catalog import load_catalog, load_model
from contract.profiles import ModbusProtocol, SensorTypeProfile, SerialLineProtocol

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_shipped_profiles_load_with_their_protocols() -> None:
    profiles = load_catalog(CONFIG).profiles
    for ref in ("env.th@1", "water.level@1", "fire.smoke@1", "gas.combustible@1", "power.meter@1"):
        assert isinstance(profiles[ref].protocol, ModbusProtocol), ref
    for ref in ("geo.gps@1", "air.pm@1"):
        assert isinstance(profiles[ref].protocol, SerialLineProtocol), ref
    meter = profiles["power.meter@1"].protocol
    assert isinstance(meter, ModbusProtocol)
    assert meter.fields["voltage_v"].word_order == "little"
    assert meter.fields["voltage_v"].count == 2
    assert "gateway.modem@1" in profiles


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("id: t.x@1\nname: t\nfields:\n  a: {type: float}\n  b: {type: bool}\n" + body)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "protocol: {kind: modbus, fields: {a: {address: 0, data_type: float16}}}",
            "protocol.modbus.fields.a.data_type",
        ),
        (
            "protocol: {kind: modbus, fields: {a: {address: 0, typo: 1}}}",
            "protocol.modbus.fields.a.typo: Extra inputs",
        ),
        ("protocol: {kind: modbus, fields: {zz: {address: 0}}}", "protocol.fields.zz: not a field of t.x@1"),
        (
            "protocol: {kind: modbus, fields: {a: {address: 0, data_type: float64}, b: {address: 3, data_type: bool}}}",
            "fields a and b overlap at holding register 3",
        ),
        (
            "protocol: {kind: modbus, fields: {a: {function: coil, address: 0, data_type: int16}}}",
            "data_type must be bool",
        ),
        (
            "protocol: {kind: modbus, fields: {b: {address: 0, data_type: int16}}}",
            "a bool field cannot be read as int16",
        ),
        (
            "protocol: {kind: modbus, fields: {a: {address: 65535, data_type: float32}}}",
            "runs past register 65535",
        ),
        ("protocol: {kind: canbus, fields: {}}", "does not match any of the expected tags"),
        ("protocol: {kind: serial_line, parser: nmea, fields: {a: {column: 1}}}", "needs a sentence type"),
        (
            "protocol: {kind: serial_line, parser: csv, fields: {a: {key: x}}}",
            "fields.a: the csv parser needs a column",
        ),
        (
            "protocol: {kind: serial_line, parser: csv, fields: {b: {column: 0}}}",
            "convert number does not give a bool",
        ),
        (
            "protocol: {kind: serial_line, parser: csv, framing: length, fields: {a: {column: 0}}}",
            "length framing needs length",
        ),
    ],
)
def test_wrong_protocols_fail_at_load_naming_file_and_field(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ContractError) as err:
        load_model(SensorTypeProfile, path)
    assert str(path) in str(err.value)
    assert message in str(err.value)
