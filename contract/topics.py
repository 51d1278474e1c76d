"""Topic scheme v1: ``yiwang/v1/{community}/{gateway}/{kind}``.

Topics are typed values built and parsed only here, never with f-strings elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contract.errors import ContractError
from contract.ids import ID_RE, MAX_ID_LENGTH

PREFIX = "yiwang/v1"


class TopicKind(StrEnum):
    TELEMETRY = "telemetry"
    EVENT = "event"
    STATE = "state"
    DEVICES = "devices"
    CONFIG = "config"
    VERSION = "version"  # v1.4: the agent version the gateway should run (#25)

    @property
    def retained(self) -> bool:
        """State, device lists, desired config and version are retained so late subscribers see them."""
        return self in (TopicKind.STATE, TopicKind.DEVICES, TopicKind.CONFIG, TopicKind.VERSION)

    @property
    def upstream(self) -> bool:
        return self not in (TopicKind.CONFIG, TopicKind.VERSION)


MAX_TOPIC_LENGTH = len(PREFIX) + 2 * (1 + MAX_ID_LENGTH) + 1 + max(len(k.value) for k in TopicKind)
"""Longest valid topic: a longer one is refused by its length alone, before it is split or parsed."""


def _check_id(what: str, value: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not ID_RE.fullmatch(value):
        raise ContractError(f"invalid {what} {value!r}: expected 1-64 of [a-z0-9-]")


@dataclass(frozen=True, slots=True)
class Topic:
    """One concrete topic of one gateway."""

    community: str
    gateway: str
    kind: TopicKind

    def __post_init__(self) -> None:
        _check_id("community id", self.community)
        _check_id("gateway id", self.gateway)
        if not isinstance(self.kind, TopicKind):
            raise TypeError(f"kind must be a TopicKind, not {type(self.kind).__name__}")

    @property
    def path(self) -> str:
        return f"{PREFIX}/{self.community}/{self.gateway}/{self.kind.value}"

    def __str__(self) -> str:
        return self.path

    @classmethod
    def parse(cls, topic: str) -> Topic:
        if not isinstance(topic, str):
            raise TypeError(f"topic must be a str, not {type(topic).__name__}")
        parts = topic.split("/")
        if len(parts) != 5 or "/".join(parts[:2]) != PREFIX:
            raise ContractError(f"invalid topic {topic!r}: expected {PREFIX}/<community>/<gateway>/<kind>")
        try:
            kind = TopicKind(parts[4])
        except ValueError:
            kinds = ", ".join(k.value for k in TopicKind)
            raise ContractError(
                f"invalid topic {topic!r}: unknown kind {parts[4]!r} (one of {kinds})"
            ) from None
        return cls(community=parts[2], gateway=parts[3], kind=kind)


def subscription(kind: TopicKind, *, community: str | None = None, share_group: str | None = None) -> str:
    """A subscription filter for one kind across gateways (and communities unless one is given).

    With ``share_group`` the filter is an MQTT 5 shared subscription, so several workers split the load.
    """
    if community is not None:
        _check_id("community id", community)
    if share_group is not None:
        _check_id("share group", share_group)
    topic_filter = f"{PREFIX}/{community or '+'}/+/{kind.value}"
    return f"$share/{share_group}/{topic_filter}" if share_group else topic_filter
