"""Which event kinds a device may send: its sensor type's, plus the ones every gateway agent reports.

A kind becomes a tag of the ``events`` measurement, so accepting any well-formed kind would let a
gateway create series without bound; a kind outside this set is refused instead.
"""

from __future__ import annotations

from contract.profiles import SensorTypeProfile

AGENT_EVENT_KINDS = frozenset({"device.available", "device.unavailable", "config.applied"})
"""Reported by the gateway agent about any device (availability) or itself (configuration applied)."""


def allowed_event_kinds(profile: SensorTypeProfile) -> frozenset[str]:
    return AGENT_EVENT_KINDS | frozenset(profile.events)


def event_kind_allowed(profile: SensorTypeProfile, kind: str) -> bool:
    return kind in AGENT_EVENT_KINDS or kind in profile.events
