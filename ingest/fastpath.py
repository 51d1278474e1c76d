"""A fast decoder for the common case: well-formed telemetry from known devices.

``decode_telemetry`` (pydantic models, profile coercion) costs ~20 µs per reading — the ingest's
bottleneck at InfluxDB rates. This path does the same checks with ``json.loads`` and a per-device
cache, and returns ``None`` for anything it is not sure about: the caller then runs the contract's
decoder, which either accepts the message (the same points) or explains what is wrong. So this path
never accepts what the contract refuses; ``tests/ingest/test_fastpath.py`` checks that it gives the
same points as the contract's decoder on valid input and defers on everything else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contract import TopicKind
from contract.catalog import Catalog
from contract.messages import MAX_PAYLOAD_BYTES, MAX_READINGS, MAX_STRING_VALUE, MAX_VALUES
from contract.profiles import FieldSpec
from contract.topics import PREFIX, Topic
from ingest.store import Point, Scalar, StoreRejected
from ingest.store.lineprotocol import field_key_text, series_text
from ingest.validate import Decoded

_TS_MIN, _TS_MAX = 1_000_000_000_000, 10_000_000_000_000
_SEQ_MAX = 2**63
_MISS = object()


def _no_constants(name: str) -> Any:
    raise ValueError(name)  # NaN / Infinity: the contract refuses them, let it say so


_loads = json.JSONDecoder(parse_constant=_no_constants).decode

# A field's stored value and its line-protocol text ("key=value"), or None: "not sure, defer".
Coerce = Callable[[Any], tuple[Scalar, str] | None]
_INT64 = 2**63
_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


def _coercer(name: str, spec: FieldSpec) -> Coerce:
    lo = -math.inf if spec.min is None else spec.min
    hi = math.inf if spec.max is None else spec.max
    key = field_key_text(name) + "="
    if spec.type == "float":

        def as_float(v: Any) -> tuple[Scalar, str] | None:
            t = type(v)
            if t is float or t is int:
                f = float(v)
                if lo <= f <= hi and math.isfinite(f):
                    return f, key + repr(f)
            return None

        return as_float
    if spec.type == "int":

        def as_int(v: Any) -> tuple[Scalar, str] | None:
            if type(v) is int and lo <= v <= hi and -_INT64 <= v < _INT64:
                return v, f"{key}{v}i"
            return None  # floats with integer value etc.: the contract knows the rules

        return as_int
    if spec.type == "bool":
        return lambda v: (v, key + ("true" if v else "false")) if type(v) is bool else None

    def as_text(v: Any) -> tuple[Scalar, str] | None:
        if type(v) is str and len(v) <= MAX_STRING_VALUE and "\n" not in v and "\r" not in v:
            return v, f'{key}"{v.translate(_TEXT_ESCAPES)}"'
        return None

    return as_text


@dataclass(frozen=True, slots=True)
class _Device:
    measurement: str
    tags: dict[str, str]
    series: str
    fields: dict[str, Coerce]


class FastDecoder:
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._topics: dict[str, Topic | None] = {}
        self._devices: dict[tuple[str, str], dict[str, _Device | None]] = {}
        self._coercers: dict[int, dict[str, Coerce]] = {}

    def _topic(self, path: str) -> Topic | None:
        topic = self._topics.get(path, _MISS)
        if topic is _MISS:
            parts = path.split("/")
            topic = None
            if len(parts) == 5 and "/".join(parts[:2]) == PREFIX and parts[4] == TopicKind.TELEMETRY.value:
                try:
                    topic = Topic.parse(path)
                except ValueError:  # ContractError is a ValueError: bad ids
                    topic = None
            if len(self._topics) < 100_000:  # bounded: topics are gateways, a garbage flood is not
                self._topics[path] = topic
        return topic  # type: ignore[return-value]

    def _device(self, community: str, gateway: str, device: str) -> _Device | None:
        devices = self._devices.setdefault((community, gateway), {})
        entry = devices.get(device, _MISS)
        if entry is _MISS:
            info = self._catalog.device(community, gateway, device)
            entry = None
            if info is not None:
                tags = {
                    "community": community,
                    "gateway": gateway,
                    "device": device,
                    "grid": info.device.grid,
                }
                measurement = info.profile.measurement
                try:
                    fields = self._coercers.get(id(info.profile)) or {
                        name: _coercer(name, spec) for name, spec in info.profile.fields.items()
                    }
                    self._coercers[id(info.profile)] = fields
                    entry = _Device(measurement, tags, series_text(measurement, tags), fields)
                except StoreRejected:
                    entry = None  # the store would refuse it; the slow path reports the refusal
                devices[device] = entry  # only catalog devices: bounded by the catalog
        return entry  # type: ignore[return-value]

    def decode(self, topic_path: str, payload: bytes) -> Decoded | None:
        """The message's points, or None: "ask ``decode_telemetry``" (invalid or unusual input)."""
        topic = self._topic(topic_path)
        if topic is None or len(payload) > MAX_PAYLOAD_BYTES:
            return None
        try:
            doc = _loads(payload.decode("utf-8"))
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than json allows
            return None
        if type(doc) is not dict or len(doc) != 2:
            return None
        seq, readings = doc.get("seq"), doc.get("readings")
        if type(seq) is not int or not 0 <= seq < _SEQ_MAX or type(readings) is not list:
            return None
        if not 1 <= len(readings) <= MAX_READINGS:
            return None
        community, gateway = topic.community, topic.gateway
        devices = self._devices.get((community, gateway), {})
        points = []
        for reading in readings:
            if type(reading) is not dict or len(reading) != 3:
                return None
            device, ts, values = reading.get("device"), reading.get("ts"), reading.get("values")
            if type(device) is not str or type(ts) is not int or type(values) is not dict:
                return None
            if not _TS_MIN <= ts < _TS_MAX or not 1 <= len(values) <= MAX_VALUES:
                return None
            entry = devices.get(device) or self._device(community, gateway, device)
            if entry is None:
                return None
            fields: dict[str, Scalar] = {}
            texts = []
            for name, value in values.items():
                coerce = entry.fields.get(name)
                stored = None if coerce is None else coerce(value)
                if stored is None:
                    return None
                fields[name], text = stored
                texts.append(text)
            line = f"{entry.series} {','.join(texts)} {ts}"
            points.append(Point(entry.measurement, entry.tags, fields, ts, entry.series, line))
        return Decoded(topic=topic, seq=seq, points=points)
