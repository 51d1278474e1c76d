"""A fast decoder for the common case: well-formed telemetry from known devices.

``decode_telemetry`` (pydantic models, profile coercion) costs ~20 µs per reading — the ingest's
bottleneck at InfluxDB rates. This path checks the message's shape in C (msgspec, typed structs that
the garbage collector does not track), then each reading against a per-device cache, and returns
``None`` for anything it is not sure about: the caller then runs the contract's decoder, which either
accepts the message (the same points) or explains what is wrong. So this path never accepts what the
contract refuses; ``tests/ingest/test_fastpath.py`` checks that it gives the same points as the
contract's decoder on valid input and defers on everything else.

For a store that writes line protocol (``TimeSeriesStore.takes_lines``) it gives each reading as its
line directly: building a ``Point`` per reading would cost more than decoding the reading.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple

import msgspec

from contract import TopicKind
from contract.catalog import Catalog, DeviceState
from contract.ids import MAX_ID_LENGTH
from contract.messages import MAX_PAYLOAD_BYTES, MAX_READINGS, MAX_STRING_VALUE, MAX_VALUES
from contract.profiles import FieldSpec, SensorTypeProfile
from contract.topics import MAX_TOPIC_LENGTH, PREFIX, Topic
from ingest.validate import Decoded
from series.lineprotocol import field_key_text, field_value_text, series_text
from series.store import Point, Scalar, StoreRejected

_SEQ_MAX = 2**63
_INT64 = 2**63
_MISS = object()
_TOPIC_CACHE = 100_000  # valid topics are gateways: far more than a deployment has
# Bounds stand in for "no bound": comparisons with them also refuse inf and NaN.
_FLOAT_MAX = sys.float_info.max


class _Reading(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    device: str
    ts: Annotated[int, msgspec.Meta(ge=1_000_000_000_000, lt=10_000_000_000_000)]
    values: Annotated[dict[str, float | int | bool | str], msgspec.Meta(min_length=1, max_length=MAX_VALUES)]


class _Telemetry(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    seq: Annotated[int, msgspec.Meta(ge=0)]
    readings: Annotated[list[_Reading], msgspec.Meta(min_length=1, max_length=MAX_READINGS)]


_decode_telemetry = msgspec.json.Decoder(_Telemetry).decode

# A field's stored value, or None: "not sure, defer" (values are never null on the wire).
Coerce = Callable[[Any], Scalar | None]
# A reading's values as line-protocol field text ("k=v,k2=v2"), or None: "not sure, defer".
FormatFields = Callable[[dict[str, Any]], str | None]


def _bounds(spec: FieldSpec) -> tuple[float, float]:
    return (-_FLOAT_MAX if spec.min is None else spec.min, _FLOAT_MAX if spec.max is None else spec.max)


def _coercer(spec: FieldSpec) -> Coerce:
    lo, hi = _bounds(spec)
    if spec.type == "float":

        def as_float(v: Any) -> float | None:
            t = type(v)
            if (t is float or t is int) and lo <= v <= hi:
                return float(v)
            return None

        return as_float
    if spec.type == "int":

        def as_int(v: Any) -> int | None:
            if type(v) is int and lo <= v <= hi and -_INT64 <= v < _INT64:
                return v
            return None  # floats with integer value etc.: the contract knows the rules

        return as_int
    if spec.type == "bool":
        return lambda v: v if type(v) is bool else None

    def as_text(v: Any) -> str | None:
        if type(v) is str and len(v) <= MAX_STRING_VALUE and "\n" not in v and "\r" not in v:
            return v
        return None

    return as_text


def _field_formatter(coercers: dict[str, Coerce]) -> FormatFields:
    keys = {name: field_key_text(name) + "=" for name in coercers}

    def fields(values: dict[str, Any]) -> str | None:
        texts = []
        for name, raw in values.items():
            coerce = coercers.get(name)
            value = None if coerce is None else coerce(raw)
            if value is None:
                return None
            texts.append(keys[name] + field_value_text(name, value))
        return ",".join(texts)

    return fields


@dataclass(frozen=True, slots=True)
class _Device:
    measurement: str
    tags: dict[str, str]
    prefix: str  # "measurement,tags " of its lines
    coercers: dict[str, Coerce]
    format_fields: FormatFields
    # The common sensor has one float field: the lines loop checks a float for it inline (a third of
    # the cost); anything else, ints included, goes through ``format_fields``.
    float_field: str | None  # its name; None for other sensors
    float_head: str  # "measurement,tags name=": its line up to the value
    lo: float
    hi: float


class _Profile(NamedTuple):
    """What a device's checks need from its sensor type, built once per profile."""

    coercers: dict[str, Coerce]
    format_fields: FormatFields
    float_field: str | None
    float_key: str  # "name=" escaped, or ""
    lo: float
    hi: float


def _profile_checks(profile: SensorTypeProfile) -> _Profile:
    coercers = {name: _coercer(spec) for name, spec in profile.fields.items()}
    checks = _Profile(coercers, _field_formatter(coercers), None, "", 0.0, 0.0)
    if len(profile.fields) == 1:
        ((name, spec),) = profile.fields.items()
        if spec.type == "float":
            lo, hi = _bounds(spec)
            return checks._replace(float_field=name, float_key=field_key_text(name) + "=", lo=lo, hi=hi)
    return checks


# The device cache of a gateway with no catalog device yet: shared, read-only, never filled.
_NO_DEVICES: dict[str, _Device] = {}


class FastDecoder:
    def __init__(self, catalog: Catalog, *, lines: bool = False) -> None:
        """``lines``: give each reading as its line-protocol text instead of a ``Point``."""
        self._catalog = catalog
        self._lines = lines
        self._topics: dict[str, Topic] = {}
        self._devices: dict[tuple[str, str], dict[str, _Device]] = {}
        self._profiles: dict[int, _Profile] = {}

    def with_catalog(self, catalog: Catalog) -> FastDecoder:
        """A decoder for a newer catalog that keeps what this one learned of the communities the new
        catalog shares with the old: a registry change costs the re-learning of what it changed only.

        The kept per-gateway caches are shared with this decoder, which a batch in flight may still
        fill: an entry of an unchanged community is right for both catalogs.
        """
        fresh = FastDecoder(catalog, lines=self._lines)
        changed = catalog.changed_since(self._catalog)
        fresh._topics = dict(self._topics)
        fresh._devices = {key: cached for key, cached in self._devices.items() if key[0] not in changed}
        if catalog.profiles is self._catalog.profiles:
            fresh._profiles = dict(self._profiles)  # keyed by the profiles' id(): the very same objects
        return fresh

    def _topic(self, path: str) -> Topic | None:
        topic = self._topics.get(path)
        if topic is None:
            if len(path) > MAX_TOPIC_LENGTH:  # refused by length: never split, parsed or kept
                return None
            parts = path.split("/")
            if len(parts) == 5 and "/".join(parts[:2]) == PREFIX and parts[4] == TopicKind.TELEMETRY.value:
                try:
                    topic = Topic.parse(path)
                except ValueError:  # ContractError is a ValueError: bad ids
                    return None
                # Only valid topics are kept: a garbage flood costs a parse each, never memory.
                if len(self._topics) < _TOPIC_CACHE:
                    self._topics[path] = topic
        return topic

    def _device(self, community: str, gateway: str, device: str) -> _Device | None:
        """The device's checks, cached for catalog devices only: an unknown id costs a lookup each
        time it is sent, never memory (the cache is bounded by the catalog)."""
        if len(device) > MAX_ID_LENGTH:  # before the lookup: hashing a 100 kB id is itself the cost
            return None
        info = self._catalog.device(community, gateway, device)
        if info is None or info.device.state == DeviceState.RETIRED:
            return None  # the slow path names the refusal
        tags = {
            "community": community,
            "gateway": gateway,
            "device": device,
            "grid": info.device.grid,
        }
        profile = info.profile
        try:
            checks = self._profiles.get(id(profile))
            if checks is None:
                checks = self._profiles[id(profile)] = _profile_checks(profile)
            prefix = series_text(profile.measurement, tags) + " "
        except StoreRejected:
            return None  # the store would refuse it; the slow path reports the refusal
        entry = _Device(
            profile.measurement,
            tags,
            prefix,
            checks.coercers,
            checks.format_fields,
            checks.float_field,
            prefix + checks.float_key,
            checks.lo,
            checks.hi,
        )
        self._devices.setdefault((community, gateway), {})[device] = entry
        return entry

    def decode(self, topic_path: str, payload: bytes) -> Decoded | None:
        """The message's points, or None: "ask ``decode_telemetry``" (invalid or unusual input)."""
        topic = self._topic(topic_path)
        if topic is None or len(payload) > MAX_PAYLOAD_BYTES:
            return None
        try:
            message = _decode_telemetry(payload)
        except msgspec.DecodeError:  # malformed JSON, or a ValidationError (its subclass): wrong shape
            return None
        if message.seq >= _SEQ_MAX:
            return None
        key = (topic.community, topic.gateway)
        devices = self._devices.get(key, _NO_DEVICES)
        points: list[Point] | list[str]
        if self._lines:
            points = self._lines_of(topic, message.readings, devices)
        else:
            points = self._points_of(topic, message.readings, devices)
        if not points:
            return None
        return Decoded(topic=topic, seq=message.seq, points=points)

    def _lines_of(self, topic: Topic, readings: list[_Reading], devices: dict[str, _Device]) -> list[str]:
        """The readings' lines; empty when any reading needs the contract's judgement."""
        lines: list[str] = []
        append = lines.append
        for reading in readings:
            device = devices.get(reading.device) or self._device(
                topic.community, topic.gateway, reading.device
            )
            if device is None:
                return []
            values = reading.values
            name = device.float_field
            if name is not None and len(values) == 1:
                value = values.get(name)
                if type(value) is float and device.lo <= value <= device.hi:
                    append(f"{device.float_head}{value!r} {reading.ts}")
                    continue
            fields = device.format_fields(values)
            if fields is None:
                return []
            append(f"{device.prefix}{fields} {reading.ts}")
        return lines

    def _points_of(self, topic: Topic, readings: list[_Reading], devices: dict[str, _Device]) -> list[Point]:
        points = []
        for reading in readings:
            device = devices.get(reading.device) or self._device(
                topic.community, topic.gateway, reading.device
            )
            if device is None:
                return []
            fields: dict[str, Scalar] = {}
            for name, raw in reading.values.items():
                coerce = device.coercers.get(name)
                value = None if coerce is None else coerce(raw)
                if value is None:
                    return []
                fields[name] = value
            points.append(Point(device.measurement, device.tags, fields, reading.ts))
        return points
