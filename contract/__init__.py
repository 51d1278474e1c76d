"""The wire contract v1: topics, message models and sensor-type profiles shared by every part.

Small, typed and free of network or database I/O; it imports nothing else of ours.
"""

from contract.errors import ContractError
from contract.messages import (
    MAX_PAYLOAD_BYTES,
    ConfigMessage,
    DeviceEntry,
    DevicesMessage,
    Event,
    EventMessage,
    Reading,
    StateMessage,
    TelemetryMessage,
    decode_message,
)
from contract.topics import PREFIX, Topic, TopicKind, subscription

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "PREFIX",
    "ConfigMessage",
    "ContractError",
    "DeviceEntry",
    "DevicesMessage",
    "Event",
    "EventMessage",
    "Reading",
    "StateMessage",
    "TelemetryMessage",
    "Topic",
    "TopicKind",
    "decode_message",
    "subscription",
]
