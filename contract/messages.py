"""Message models of wire contract v1 and the one entry point that decodes a payload."""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from contract.errors import ContractError
from contract.ids import FieldName, Id, SensorTypeRef
from contract.topics import TopicKind

MAX_PAYLOAD_BYTES = 256 * 1024
"""Larger payloads are rejected before parsing; a gateway splits its backlog into several messages."""
MAX_READINGS = 5_000
MAX_VALUES = 64
MAX_STRING_VALUE = 256

# Epoch milliseconds between 2001-09-09 and 2286-11-20: catches seconds sent as milliseconds.
TIMESTAMP_MS = Annotated[StrictInt, Field(ge=1_000_000_000_000, lt=10_000_000_000_000)]
Seq = Annotated[StrictInt, Field(ge=0, lt=2**63)]
FiniteNumber = Annotated[float, Field(allow_inf_nan=False)]
ShortString = Annotated[str, StringConstraints(max_length=MAX_STRING_VALUE)]


def _check_value(value: object) -> bool | int | float | str:
    # One clear message instead of pydantic's four-branch union error; bool is checked apart from
    # int so JSON true never becomes 1, and 72 stays an int (profiles decide int vs float).
    if isinstance(value, bool | int | str):
        if isinstance(value, str) and len(value) > MAX_STRING_VALUE:
            raise ValueError(f"string longer than {MAX_STRING_VALUE} characters")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("number must be finite (no NaN or infinity)")
        return value
    raise ValueError(f"expected a number, boolean or short string, got {type(value).__name__}")


Value = Annotated[bool | int | float | str, PlainValidator(_check_value)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class Reading(_Message):
    device: Id
    ts: TIMESTAMP_MS
    values: dict[FieldName, Value] = Field(min_length=1, max_length=MAX_VALUES)


class TelemetryMessage(_Message):
    seq: Seq
    readings: list[Reading] = Field(min_length=1, max_length=MAX_READINGS)


EventKind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,3}$")]


class Event(_Message):
    device: Id
    ts: TIMESTAMP_MS
    id: uuid.UUID = Field(strict=False)
    kind: EventKind
    phase: Literal["start", "update", "end", "instant"]
    attrs: dict[FieldName, Value] = Field(default_factory=dict, max_length=MAX_VALUES)


class EventMessage(_Message):
    seq: Seq
    events: list[Event] = Field(min_length=1, max_length=MAX_READINGS)


class SpoolState(_Message):
    """The gateway's store-and-forward spool; ``bytes`` and ``dropped`` are optional (added in v1.1)."""

    depth: Annotated[StrictInt, Field(ge=0)]
    """Readings and events spooled and not yet acknowledged by the broker."""
    oldest_ts: TIMESTAMP_MS | None
    bytes: Annotated[StrictInt, Field(ge=0)] | None = None
    dropped: Annotated[StrictInt, Field(ge=0)] | None = None
    """Readings and events given up by the spool's overflow policy since the spool was created."""


class ModemState(_Message):
    rsrp: FiniteNumber | None = None
    sinr: FiniteNumber | None = None


class CameraState(_Message):
    """One camera's health as the gateway sees it (added in v1.1)."""

    fps: Annotated[FiniteNumber, Field(ge=0)]
    frames: Annotated[StrictInt, Field(ge=0)]
    dropped: Annotated[StrictInt, Field(ge=0)]
    reconnects: Annotated[StrictInt, Field(ge=0)]
    connected: StrictBool
    last_frame_age_s: Annotated[FiniteNumber, Field(ge=0)] | None = None


ConfigHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,128}$")]


class ConfigRefusal(_Message):
    """The last desired config a gateway refused, and why (added in v1.3)."""

    hash: ConfigHash | None
    """None when the message was too broken to carry a hash."""
    reason: ShortString


AgentVersion = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")]
UpgradeOutcome = Literal[
    "downloading", "installing", "installed", "switching", "switched", "confirmed", "rolled_back", "failed"
]


class UpgradeReport(_Message):
    """The gateway's last agent upgrade attempt: which version, how far it got or how it ended, why
    (added in v1.4; the version running is ``agent``)."""

    attempt: AgentVersion
    outcome: UpgradeOutcome
    reason: ShortString | None = None
    ts: TIMESTAMP_MS | None = None
    """When the attempt last changed phase."""


class DesiredVersionMessage(_Message):
    """The agent version a gateway should run (retained ``version`` topic, added in v1.4); the gateway
    upgrades when it differs from the one running and a signed release of it exists."""

    version: AgentVersion
    rollout: Annotated[StrictInt, Field(ge=1)] | None = None


class StateMessage(_Message):
    """Retained gateway state; the last will is just ``{"online": false}``.

    ``reason`` (added in v1.2) tells a planned stop from an outage: an agent that stops cleanly says
    ``{"online": false, "reason": "stopped"}``; without a reason, offline means power or link lost.
    ``config_applied`` and ``config_refused`` (added in v1.3) are the hash of the remote config the
    agent runs (absent: it runs its own file) and the last one it refused with the reason.
    """

    online: StrictBool
    ts: TIMESTAMP_MS | None = None
    agent: ShortString | None = None
    spool: SpoolState | None = None
    modem: ModemState | None = None
    cameras: dict[Id, CameraState] | None = Field(default=None, max_length=64)
    reason: Literal["stopped"] | None = None
    config_applied: ConfigHash | None = None
    config_refused: ConfigRefusal | None = None
    upgrade: UpgradeReport | None = None

    @model_validator(mode="after")
    def _reason_only_when_offline(self) -> StateMessage:
        if self.online and self.reason is not None:
            raise ValueError("reason is given only with online false (why the gateway is offline)")
        return self

    @property
    def planned_stop(self) -> bool:
        """Offline because the agent was stopped on purpose, not because power or link failed."""
        return not self.online and self.reason == "stopped"


class DeviceEntry(_Message):
    device: Id
    type: SensorTypeRef


class DevicesMessage(_Message):
    ts: TIMESTAMP_MS
    devices: list[DeviceEntry] = Field(max_length=MAX_READINGS)


class ConfigMessage(_Message):
    """Desired gateway configuration; a gateway applies it only when ``hash`` changes."""

    hash: ConfigHash
    config: dict[str, object]


Message = (
    TelemetryMessage | EventMessage | StateMessage | DevicesMessage | ConfigMessage | DesiredVersionMessage
)

MODELS: dict[TopicKind, type[Message]] = {
    TopicKind.TELEMETRY: TelemetryMessage,
    TopicKind.EVENT: EventMessage,
    TopicKind.STATE: StateMessage,
    TopicKind.DEVICES: DevicesMessage,
    TopicKind.CONFIG: ConfigMessage,
    TopicKind.VERSION: DesiredVersionMessage,
}


def _describe(err: ValidationError) -> str:
    parts = []
    for detail in err.errors()[:5]:
        where = ".".join(str(p) for p in detail["loc"]) or "payload"
        message = detail["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    more = err.error_count() - len(parts)
    if more > 0:
        parts.append(f"(+{more} more)")
    return "; ".join(parts)


def decode_message(kind: TopicKind, payload: bytes | str) -> Message:
    """Parse and validate one payload for a topic kind, or raise ContractError with the reason."""
    size = len(payload.encode() if isinstance(payload, str) else payload)
    if size > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload of {size} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}")
    if size == 0:
        raise ContractError("empty payload")
    try:
        return MODELS[kind].model_validate_json(payload)
    except ValidationError as err:
        if any(d["type"] == "json_invalid" for d in err.errors()):
            raise ContractError(f"not valid JSON: {err.errors()[0]['msg']}") from err
        raise ContractError(_describe(err)) from err
