"""A gateway's desired config rendered from the registry: what is in it, its hash, and drift."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from contract.catalog import load_sensor_types
from contract.errors import ContractError
from contract.messages import StateMessage, decode_message
from contract.profiles import SensorTypeProfile
from contract.topics import TopicKind
from edge.gateway_config import DeviceSet
from registry import definitions, editing
from registry.desired import (
    DesiredConfig,
    config_drift,
    config_drifts,
    fleet_config_drifts,
    render,
    render_all,
)
from registry.editing import RegistryError
from registry.importer import import_communities, read_communities
from tests.registry.conftest import CONFIG, YUEHE

TYPES = {p.id for p in load_sensor_types(CONFIG)}
C = "zhuganxiang"
RTU = {"id": "rs485-1", "kind": "modbus_rtu", "port": "/dev/ttyUSB0", "timeout_s": 0.3, "retries": 0}


@pytest.fixture
def seeded(registry_db: Engine) -> Engine:
    import_communities(registry_db, read_communities(CONFIG / "communities"), [YUEHE], TYPES)
    return registry_db


def _in(db: Engine, change: Callable[[Session], Any]) -> Any:
    with Session(db) as session, session.begin():
        return change(session)


def _device(db: Engine, gateway: str, **fields: Any) -> None:
    _in(db, lambda s: editing.add_device(s, C, gateway, {"grid": "g-north", **fields}, TYPES))


def _render(db: Engine, gateway: str = "gw-01") -> DesiredConfig | None:
    with Session(db) as session:
        return render(session, C, gateway)


def test_a_gateway_without_a_bus_is_left_to_its_own_file(seeded: Engine) -> None:
    assert _render(seeded) is None
    with Session(seeded) as session:
        assert render_all(session) == {}


def test_the_rendered_config_holds_the_bus_and_its_active_and_maintenance_devices(seeded: Engine) -> None:
    _in(seeded, lambda s: editing.add_bus(s, C, "gw-01", RTU))
    _device(seeded, "gw-01", id="th-91", type="env.th@1", bus="rs485-1", unit=1, poll_s=2)
    _device(
        seeded,
        "gw-01",
        id="wl-91",
        type="water.level@1",
        bus="rs485-1",
        unit=2,
        state="maintenance",
        options={"deadband": {"level_cm": 0.5}},
    )
    _device(seeded, "gw-01", id="wl-92", type="water.level@1", bus="rs485-1", unit=3, state="planned")
    _device(seeded, "gw-01", id="wl-93", type="water.level@1", bus="rs485-1", unit=4)
    _in(seeded, lambda s: editing.change_device(s, C, "wl-93", {"state": "retired"}, TYPES))
    _device(seeded, "gw-01", id="th-92", type="env.th@1")  # registry-only: no bus

    desired = _render(seeded)
    assert desired is not None
    assert desired.config == {
        "buses": [
            {
                "id": "rs485-1",
                "kind": "modbus_rtu",
                "port": "/dev/ttyUSB0",
                "baudrate": 9600,
                "parity": "N",
                "bytesize": 8,
                "stopbits": 1,
                "timeout_s": 0.3,
                "retries": 0,
                "devices": [
                    {"id": "th-91", "type": "env.th@1", "unit": 1, "poll_s": 2.0},
                    {"id": "wl-91", "type": "water.level@1", "unit": 2, "deadband": {"level_cm": 0.5}},
                ],
            }
        ]
    }
    DeviceSet.model_validate(desired.config)  # what the gateway validates, field for field
    canonical = json.dumps(desired.config, sort_keys=True, separators=(",", ":"))
    assert desired.hash == hashlib.sha256(canonical.encode()).hexdigest()
    message = decode_message(TopicKind.CONFIG, desired.payload())
    assert message.hash == desired.hash  # type: ignore[union-attr]


def test_the_hash_moves_with_the_config_and_only_with_it(seeded: Engine) -> None:
    _in(seeded, lambda s: editing.add_bus(s, C, "gw-01", RTU))
    _device(seeded, "gw-01", id="th-91", type="env.th@1", bus="rs485-1", unit=1)
    first = _render(seeded)
    assert first is not None and _render(seeded) == first
    _in(seeded, lambda s: editing.change_device(s, C, "th-91", {"location": "B1 pump room"}, TYPES))
    assert _render(seeded) == first  # a place's words are not the gateway's business
    _in(seeded, lambda s: editing.change_device(s, C, "th-91", {"poll_s": 10}, TYPES))
    second = _render(seeded)
    assert second is not None and second.hash != first.hash


def test_a_bus_with_no_device_left_is_left_out(seeded: Engine) -> None:
    _in(seeded, lambda s: editing.add_bus(s, C, "gw-01", RTU))
    _in(seeded, lambda s: editing.add_bus(s, C, "gw-01", {**RTU, "id": "rs485-2", "port": "/dev/ttyUSB1"}))
    _device(seeded, "gw-01", id="th-91", type="env.th@1", bus="rs485-2", unit=1)
    desired = _render(seeded)
    assert desired is not None
    assert [b["id"] for b in desired.config["buses"]] == ["rs485-2"]
    _in(seeded, lambda s: editing.change_device(s, C, "th-91", {"state": "retired"}, TYPES))
    desired = _render(seeded)
    assert desired is not None and desired.config == {"buses": []}  # managed, with nothing to poll


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"bus": "rs485-1"}, "unit", "give the device's unit"),
        ({"bus": "rs485-1", "unit": 0}, "unit", "greater than or equal to 1"),
        ({"bus": "rs485-1", "unit": 248}, "unit", "less than or equal to 247"),
        ({"bus": "rs485-1", "unit": 1}, "unit", "unit 1 of bus rs485-1 is already device 'th-91'"),
        ({"unit": 5}, "bus", "give its bus too"),
        ({"bus": "rs485-9", "unit": 5}, "bus", "not a bus of gateway gw-01"),
        ({"bus": "rs485-1", "unit": 5, "poll_s": 0}, "poll_s", "greater than 0"),
        ({"bus": "rs485-1", "unit": 5, "options": {"colour": "red"}}, "options.colour", "Extra inputs"),
    ],
)
def test_a_bad_placement_is_refused_naming_the_field(
    seeded: Engine, fields: dict[str, Any], field: str, message: str
) -> None:
    _in(seeded, lambda s: editing.add_bus(s, C, "gw-01", RTU))
    _device(seeded, "gw-01", id="th-91", type="env.th@1", bus="rs485-1", unit=1)
    with pytest.raises(RegistryError, match=message) as refused:
        _device(seeded, "gw-01", id="th-93", type="env.th@1", **fields)
    assert refused.value.field == field
    assert (_render(seeded) or DesiredConfig(C, "gw-01", {}, "")).config["buses"][0]["devices"] == [
        {"id": "th-91", "type": "env.th@1", "unit": 1}
    ]


def test_a_retired_device_frees_its_unit_and_a_moved_one_leaves_its_bus(seeded: Engine) -> None:
    _in(seeded, lambda s: editing.add_bus(s, C, "gw-01", RTU))
    _device(seeded, "gw-01", id="th-91", type="env.th@1", bus="rs485-1", unit=1)
    _in(seeded, lambda s: editing.change_device(s, C, "th-91", {"gateway": "gw-02"}, TYPES))
    desired = _render(seeded)
    assert desired is not None and desired.config == {"buses": []}
    _device(seeded, "gw-01", id="th-92", type="env.th@1", bus="rs485-1", unit=2)
    _in(seeded, lambda s: editing.change_device(s, C, "th-92", {"state": "retired"}, TYPES))
    _device(seeded, "gw-01", id="th-93", type="env.th@1", bus="rs485-1", unit=2)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"id": "tcp", "kind": "modbus_tcp"}, "body", "needs a host"),
        ({"id": "x", "kind": "modbus_rtu"}, "body", "needs a serial port"),
        ({"id": "x", "kind": "can_bus", "port": "/dev/x"}, "kind", "Input should be"),
        ({**RTU, "id": "rs485-2"}, "port", "already bus 'rs485-1'"),
        (RTU, "id", "already has a bus"),
    ],
)
def test_a_bad_bus_is_refused_naming_the_field(
    seeded: Engine, fields: dict[str, Any], field: str, message: str
) -> None:
    _in(seeded, lambda s: editing.add_bus(s, C, "gw-01", RTU))
    with pytest.raises(RegistryError, match=message) as refused:
        _in(seeded, lambda s: editing.add_bus(s, C, "gw-01", fields))
    assert refused.value.field == field


def test_drift_compares_the_desired_hash_with_the_reported_one() -> None:
    desired = DesiredConfig(C, "gw-01", {"buses": []}, "a" * 64)
    assert config_drift(None, None).drift is False  # configured by its own file
    assert config_drift(desired, None).drift is True  # never said what it runs
    assert config_drift(desired, {"online": False}).drift is True
    in_sync = config_drift(desired, {"online": True, "config_applied": "a" * 64})
    assert (in_sync.drift, in_sync.refusing) == (False, False)
    refused = config_drift(
        desired,
        {"online": True, "config_applied": "b" * 64, "config_refused": {"hash": "a" * 64, "reason": "no"}},
    )
    assert (refused.drift, refused.refusing, refused.applied, refused.reason) == (True, True, "b" * 64, "no")


def test_drift_of_the_fleet_renders_each_community_once(seeded: Engine) -> None:
    _in(seeded, lambda s: editing.add_bus(s, C, "gw-01", RTU))
    _device(seeded, "gw-01", id="th-91", type="env.th@1", bus="rs485-1", unit=1)
    with Session(seeded) as session:
        drifts = config_drifts(session, {(C, "gw-01"): {"online": True}, (C, "gw-02"): None})
    assert drifts[(C, "gw-01")].drift and not drifts[(C, "gw-02")].drift
    assert fleet_config_drifts(seeded, {(C, "gw-01"): {"online": True}}) == {
        (C, "gw-01"): drifts[(C, "gw-01")]
    }


def test_the_state_message_carries_the_config_outcome_and_old_states_stay_valid() -> None:
    old = decode_message(TopicKind.STATE, b'{"online": true, "ts": 1764183600123}')
    assert isinstance(old, StateMessage) and old.config_applied is None
    new = decode_message(
        TopicKind.STATE,
        json.dumps(
            {"online": True, "config_applied": "a" * 64, "config_refused": {"hash": None, "reason": "empty"}}
        ),
    )
    assert isinstance(new, StateMessage) and new.config_refused is not None
    with pytest.raises(ContractError, match="config_applied"):
        decode_message(TopicKind.STATE, b'{"online": true, "config_applied": "not-a-hash"}')


def test_an_import_keeps_buses_and_placements_and_a_removed_gateway_takes_its_buses(seeded: Engine) -> None:
    _in(seeded, lambda s: editing.add_bus(s, C, "gw-01", RTU))
    _in(seeded, lambda s: editing.add_bus(s, C, "gw-02", RTU))
    place = {"bus": "rs485-1", "unit": 1, "location": "新配电室"}
    _in(seeded, lambda s: editing.change_device(s, C, "th-0101", place, TYPES))
    communities = read_communities(CONFIG / "communities")
    import_communities(seeded, communities, [YUEHE], TYPES)  # the files say the old location
    desired = _render(seeded)
    assert desired is not None
    assert desired.config["buses"][0]["devices"] == [{"id": "th-0101", "type": "env.th@1", "unit": 1}]

    (community,) = [c for c in communities if c.id == C]
    without_gw02 = community.model_copy(
        update={"gateways": [g for g in community.gateways if g.id != "gw-02"]}
    )
    result = import_communities(seeded, [without_gw02], [YUEHE], TYPES)
    assert "- gateway zhuganxiang/gw-02" in [c.describe() for c in result.changes]
    with Session(seeded) as session:
        assert set(render_all(session)) == {(C, "gw-01")}


def test_a_stored_type_ships_with_the_configs_of_the_gateways_that_use_it(seeded: Engine) -> None:
    """A type added while the platform runs needs no file on the gateway: its profile rides along."""
    co2 = SensorTypeProfile.model_validate(
        {
            "id": "air.co2@1",
            "name": "CO2 sensor",
            "fields": {"co2_ppm": {"type": "float", "unit": "ppm", "min": 0, "max": 10000}},
            "protocol": {"kind": "modbus", "fields": {"co2_ppm": {"function": "input", "address": 0}}},
        }
    )
    other = co2.model_copy(update={"id": "air.co2@2"})
    _in(seeded, lambda s: editing.add_bus(s, C, "gw-01", RTU))
    _device(seeded, "gw-01", id="th-91", type="env.th@1", bus="rs485-1", unit=1)
    before = _render(seeded)
    definitions.add_profile(seeded, co2, source="test", author="test")
    assert _render(seeded) == before  # nobody on gw-01 uses it: its config does not move

    types = TYPES | {"air.co2@1"}
    _in(
        seeded,
        lambda s: editing.add_device(
            s,
            C,
            "gw-01",
            {"grid": "g-north", "id": "co2-01", "type": "air.co2@1", "bus": "rs485-1", "unit": 7},
            types,
        ),
    )
    definitions.add_profile(seeded, other, source="test", author="test")
    desired = _render(seeded)
    assert desired is not None
    assert desired.config["sensor_types"] == {"air.co2@1": co2.model_dump(mode="json")}
    assert SensorTypeProfile.model_validate(desired.config["sensor_types"]["air.co2@1"]) == co2
