"""Telemetry payload → time-series points, checked against the device registry and profiles."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from contract import ContractError, EventMessage, TelemetryMessage, Topic, TopicKind, decode_message
from contract.catalog import Catalog, DeviceInfo, DeviceState
from contract.events import allowed_event_kinds, event_kind_allowed
from series.store import Line, Point


@dataclass(frozen=True, slots=True)
class Decoded:
    topic: Topic
    seq: int
    points: Sequence[Point | Line]  # Lines only from the fast path, for a store that takes them


class UnknownDevice(ContractError):
    """A device the catalog does not know: perhaps one registered a moment ago (ingest/writer.py)."""


def _registered(catalog: Catalog, topic: Topic, device: str, where: str) -> DeviceInfo:
    info = catalog.device(topic.community, topic.gateway, device)
    if info is None:
        raise UnknownDevice(
            f"{where}.device: unknown device {device!r} on gateway {topic.community}/{topic.gateway}"
        )
    if info.device.state == DeviceState.RETIRED:
        raise ContractError(f"{where}.device: retired device {device!r} of community {topic.community}")
    return info


def _tags(topic: Topic, info: DeviceInfo) -> dict[str, str]:
    """The series tags: bounded ids only, never values (tag cardinality drives InfluxDB's memory)."""
    return {
        "community": topic.community,
        "gateway": topic.gateway,
        "device": info.device.id,
        "grid": info.device.grid,
    }


def decode_telemetry(topic_path: str, payload: bytes, catalog: Catalog) -> Decoded:
    """All readings of one message as points, or ContractError: one bad reading rejects the message.

    Rejecting the whole message keeps it intact in the dead-letter store, where an operator can see
    every reading the gateway sent together, instead of a half-stored message.
    """
    topic = Topic.parse(topic_path)
    if topic.kind is TopicKind.EVENT:
        return decode_events(topic, payload, catalog)
    if topic.kind is not TopicKind.TELEMETRY:
        raise ContractError(f"{topic_path}: ingest takes telemetry and events, not {topic.kind.value}")
    message = decode_message(TopicKind.TELEMETRY, payload)
    assert isinstance(message, TelemetryMessage)
    points = []
    for index, reading in enumerate(message.readings):
        info = _registered(catalog, topic, reading.device, f"readings.{index}")
        try:
            fields = info.profile.coerce_values(dict(reading.values))
        except ContractError as err:
            raise ContractError(f"readings.{index}.values.{err.reason} ({reading.device})") from err
        tags = _tags(topic, info)
        points.append(Point(measurement=info.profile.measurement, tags=tags, fields=fields, ts_ms=reading.ts))
    return Decoded(topic=topic, seq=message.seq, points=points)


EVENT_MEASUREMENT = "events"


def decode_events(topic: Topic, payload: bytes, catalog: Catalog) -> Decoded:
    """Events become points of one ``events`` measurement, so their seq counts with the telemetry's
    (a gateway numbers both) and an invalid event is dead-lettered instead of silently ignored.

    ``attrs`` is kept as one JSON string: attribute types differ between event kinds, and one field per
    attribute would let one kind's string collide with another's number in the store. The kind is a
    tag, so only the kinds of the device's sensor type (and the agent's own) are accepted: free text
    there would create series without bound.
    """
    message = decode_message(TopicKind.EVENT, payload)
    assert isinstance(message, EventMessage)
    points = []
    for index, event in enumerate(message.events):
        info = _registered(catalog, topic, event.device, f"events.{index}")
        if not event_kind_allowed(info.profile, event.kind):
            known = ", ".join(sorted(allowed_event_kinds(info.profile)))
            raise ContractError(
                f"events.{index}.kind: unknown event kind {event.kind[:64]!r} for {info.profile.id} "
                f"({event.device}; kinds: {known})"
            )
        tags = _tags(topic, info) | {"kind": event.kind}
        fields: dict[str, bool | int | float | str] = {
            "phase": event.phase,
            "event_id": str(event.id),
            "attrs": json.dumps(event.attrs, ensure_ascii=False, sort_keys=True),
        }
        points.append(Point(measurement=EVENT_MEASUREMENT, tags=tags, fields=fields, ts_ms=event.ts))
    return Decoded(topic=topic, seq=message.seq, points=points)
