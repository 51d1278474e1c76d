import json
from typing import Any

import pytest

from contract import (
    MAX_PAYLOAD_BYTES,
    ContractError,
    EventMessage,
    StateMessage,
    TelemetryMessage,
    TopicKind,
    decode_message,
)

TS = 1764183600123


def telemetry(**overrides: Any) -> dict[str, Any]:
    reading = {"device": "th-0101", "ts": TS, "values": {"temperature": 21.5, "humidity": 55.1}}
    reading.update(overrides.pop("reading", {}))
    return {"seq": 1842, "readings": [reading], **overrides}


def encode(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_contract_example_telemetry_decodes() -> None:
    msg = decode_message(TopicKind.TELEMETRY, encode(telemetry()))
    assert isinstance(msg, TelemetryMessage)
    assert msg.seq == 1842
    assert msg.readings[0].values == {"temperature": 21.5, "humidity": 55.1}


def test_value_types_are_kept_exactly() -> None:
    values = {"level_cm": 72, "ratio": 0.5, "smoke": True, "mode": "auto"}
    msg = decode_message(TopicKind.TELEMETRY, encode(telemetry(reading={"values": values})))
    assert isinstance(msg, TelemetryMessage)
    got = msg.readings[0].values
    assert got == values
    assert type(got["level_cm"]) is int and type(got["smoke"]) is bool and type(got["ratio"]) is float


def test_contract_example_event_decodes() -> None:
    doc = {
        "seq": 1843,
        "events": [
            {
                "device": "cam-03",
                "ts": 1764183600456,
                "id": "6f1c2a3e-0c1b-4c8e-9a57-2f3b9a1d4e55",
                "kind": "camera.motion",
                "phase": "start",
                "attrs": {"zone": "fire-lane", "score": 0.81},
            }
        ],
    }
    msg = decode_message(TopicKind.EVENT, encode(doc))
    assert isinstance(msg, EventMessage)
    assert msg.events[0].attrs["zone"] == "fire-lane"


@pytest.mark.parametrize(
    "doc",
    [
        {"online": False},
        {
            "online": True,
            "ts": TS,
            "agent": "0.1.0",
            "spool": {"depth": 0, "oldest_ts": None},
            "modem": {"rsrp": -95, "sinr": 12},
        },
    ],
)
def test_state_messages(doc: dict[str, Any]) -> None:
    assert isinstance(decode_message(TopicKind.STATE, encode(doc)), StateMessage)


def test_a_planned_stop_says_so_and_a_last_will_does_not() -> None:
    stopped = decode_message(TopicKind.STATE, encode({"online": False, "ts": TS, "reason": "stopped"}))
    assert isinstance(stopped, StateMessage)
    assert (stopped.reason, stopped.planned_stop) == ("stopped", True)
    will = decode_message(TopicKind.STATE, encode({"online": False}))
    assert isinstance(will, StateMessage)
    assert (will.reason, will.planned_stop) == (None, False)
    # Additive: a v1.0 state without the field still decodes, and its encoding leaves it out.
    assert "reason" not in will.model_dump_json(exclude_unset=True)


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        ({"online": False, "reason": "rebooting"}, "reason: Input should be 'stopped'"),
        ({"online": True, "reason": "stopped"}, "reason is given only with online false"),
    ],
)
def test_a_state_reason_is_checked(doc: dict[str, Any], error: str) -> None:
    with pytest.raises(ContractError, match=error):
        decode_message(TopicKind.STATE, encode(doc))


BAD_TELEMETRY: list[tuple[str, bytes, str]] = [
    ("not json", b"{seq: 1}", "not valid JSON"),
    ("json array", b"[1, 2]", "payload: Input should be an object"),
    ("empty", b"", "empty payload"),
    ("missing seq", encode({"readings": telemetry()["readings"]}), "seq: Field required"),
    ("missing readings", encode({"seq": 1}), "readings: Field required"),
    ("no readings", encode({"seq": 1, "readings": []}), "at least 1 item"),
    ("seq as string", encode(telemetry(seq="1")), "seq: Input should be a valid integer"),
    ("seq as bool", encode(telemetry(seq=True)), "seq: Input should be a valid integer"),
    ("negative seq", encode(telemetry(seq=-1)), "seq: Input should be greater than or equal to 0"),
    ("ts in seconds", encode(telemetry(reading={"ts": 1764183600})), "readings.0.ts"),
    ("ts as float", encode(telemetry(reading={"ts": 1764183600123.5})), "readings.0.ts"),
    (
        "NaN",
        b'{"seq": 1, "readings": [{"device": "d", "ts": 1764183600123, "values": {"x": NaN}}]}',
        "readings.0.values.x",
    ),
    (
        "Infinity",
        b'{"seq": 1, "readings": [{"device": "d", "ts": 1764183600123, "values": {"x": Infinity}}]}',
        "readings.0.values.x",
    ),
    (
        "overflow to inf",
        b'{"seq": 1, "readings": [{"device": "d", "ts": 1764183600123, "values": {"x": 1e999}}]}',
        "finite",
    ),
    (
        "nested value",
        encode(telemetry(reading={"values": {"x": {"y": 1}}})),
        "readings.0.values.x: expected a number",
    ),
    ("null value", encode(telemetry(reading={"values": {"x": None}})), "readings.0.values.x"),
    ("long string", encode(telemetry(reading={"values": {"x": "a" * 257}})), "longer than 256"),
    ("no values", encode(telemetry(reading={"values": {}})), "readings.0.values"),
    ("bad field name", encode(telemetry(reading={"values": {"Temp C": 1}})), "readings.0.values.Temp C"),
    ("bad device id", encode(telemetry(reading={"device": "TH 01"})), "readings.0.device"),
    ("unknown top-level key", encode(telemetry(extra=1)), "extra: Extra inputs are not permitted"),
    ("unknown reading key", encode(telemetry(reading={"unit": "C"})), "readings.0.unit: Extra inputs"),
]


@pytest.mark.parametrize(("name", "payload", "reason"), BAD_TELEMETRY, ids=[c[0] for c in BAD_TELEMETRY])
def test_invalid_telemetry_is_rejected_with_a_reason(name: str, payload: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as info:
        decode_message(TopicKind.TELEMETRY, payload)
    assert reason in info.value.reason


def test_oversized_payload_is_rejected_before_parsing() -> None:
    payload = b" " * (MAX_PAYLOAD_BYTES + 1)
    with pytest.raises(ContractError, match="exceeds the limit"):
        decode_message(TopicKind.TELEMETRY, payload)


def test_too_many_readings() -> None:
    reading = {"device": "d", "ts": TS, "values": {"x": 1}}
    payload = json.dumps({"seq": 1, "readings": [reading] * 5001}, separators=(",", ":")).encode()
    assert len(payload) < MAX_PAYLOAD_BYTES
    with pytest.raises(ContractError, match="at most 5000"):
        decode_message(TopicKind.TELEMETRY, payload)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"phase": "begin"}, "events.0.phase"),
        ({"id": "not-a-uuid"}, "events.0.id"),
        ({"kind": "motion"}, "events.0.kind"),
        ({"attrs": {"zone": ["a"]}}, "events.0.attrs.zone"),
    ],
)
def test_invalid_events(event: dict[str, Any], reason: str) -> None:
    base = {
        "device": "cam-03",
        "ts": TS,
        "id": "6f1c2a3e-0c1b-4c8e-9a57-2f3b9a1d4e55",
        "kind": "camera.motion",
        "phase": "start",
    }
    with pytest.raises(ContractError, match=reason):
        decode_message(TopicKind.EVENT, encode({"seq": 1, "events": [{**base, **event}]}))


def test_messages_serialise_back_to_the_same_document() -> None:
    doc = telemetry()
    msg = decode_message(TopicKind.TELEMETRY, encode(doc))
    assert json.loads(msg.model_dump_json()) == doc
