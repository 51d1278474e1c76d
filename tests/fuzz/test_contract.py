"""Fuzzing the wire contract: payload decoding (every topic kind) and topic parsing.

Properties: anything that is not a valid message raises ContractError with a reason and nothing else;
valid messages decode, and encode → decode is the identity; topics round-trip through their path.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from contract import ContractError, Topic, TopicKind, decode_message, subscription
from contract.messages import MAX_PAYLOAD_BYTES, MODELS
from tests.fuzz.budget import fuzz
from tests.fuzz.reasons import expect_reason
from tests.fuzz.strategies import (
    ID,
    JSON,
    configs,
    desired_versions,
    device_lists,
    events,
    mutated,
    states,
    telemetry,
)

KINDS = st.sampled_from(list(TopicKind))
VALID: dict[TopicKind, st.SearchStrategy[dict[str, Any]]] = {
    TopicKind.TELEMETRY: telemetry(),
    TopicKind.EVENT: events(),
    TopicKind.STATE: states(),
    TopicKind.DEVICES: device_lists(),
    TopicKind.CONFIG: configs(),
    TopicKind.VERSION: desired_versions(),
}


def decode_or_reason(kind: TopicKind, payload: bytes | str) -> str | None:
    """None when the payload decoded; else the rejection's reason, which must say something."""
    try:
        decode_message(kind, payload)
    except ContractError as err:
        return expect_reason(err)
    return None


@fuzz(6)
@given(kind=KINDS, payload=st.binary(max_size=512))
@example(kind=TopicKind.TELEMETRY, payload=b"[" * 5000)  # nesting beyond the JSON parser's limit
@example(kind=TopicKind.TELEMETRY, payload=b"\xff\xfe")
@example(kind=TopicKind.STATE, payload=b'{"online": NaN}')
def test_arbitrary_bytes_are_refused_with_a_reason(kind: TopicKind, payload: bytes) -> None:
    decode_or_reason(kind, payload)


@fuzz(4)
@given(kind=KINDS, payload=st.text(max_size=256))
def test_arbitrary_text_is_refused_with_a_reason(kind: TopicKind, payload: str) -> None:
    decode_or_reason(kind, payload)


@fuzz(6)
@given(kind=KINDS, doc=JSON)
def test_arbitrary_json_is_refused_with_a_reason(kind: TopicKind, doc: object) -> None:
    decode_or_reason(kind, json.dumps(doc))


@fuzz(12)
@given(data=st.data(), kind=KINDS)
def test_nearly_valid_messages_decode_or_say_why(data: st.DataObject, kind: TopicKind) -> None:
    doc = data.draw(mutated(VALID[kind]))
    payload = json.dumps(doc)
    if decode_or_reason(kind, payload) is None:
        # Accepted: then it is a message of the kind and encodes back to an equal message.
        message = decode_message(kind, payload)
        assert isinstance(message, MODELS[kind])
        assert decode_message(kind, message.model_dump_json()) == message


@fuzz(12)
@given(data=st.data(), kind=KINDS)
def test_valid_messages_round_trip(data: st.DataObject, kind: TopicKind) -> None:
    doc = data.draw(VALID[kind])
    message = decode_message(kind, json.dumps(doc))
    assert isinstance(message, MODELS[kind])
    # Encode → decode is the identity, and nothing the gateway sent is lost on the way.
    assert decode_message(kind, message.model_dump_json()) == message
    assert message.model_dump(mode="json", exclude_unset=True) == doc


@fuzz(2)
@given(kind=KINDS, padding=st.integers(min_value=1, max_value=1024), doc=JSON)
def test_oversized_payloads_are_refused_before_parsing(kind: TopicKind, padding: int, doc: object) -> None:
    text = json.dumps(doc)
    payload = text + " " * (MAX_PAYLOAD_BYTES - len(text.encode()) + padding)
    reason = decode_or_reason(kind, payload)
    assert reason is not None
    assert "exceeds the limit" in reason


@fuzz(4)
@given(topic=st.text(max_size=80) | st.from_regex(r"\Ayiwang/v1/[^/]{0,10}/[^/]{0,10}/[a-z]{0,10}\Z"))
@example(topic="yiwang/v1/a/b/Telemetry")
@example(topic="yiwang/v1/ä/b/state")
def test_arbitrary_topics_are_refused_with_a_reason(topic: str) -> None:
    try:
        parsed = Topic.parse(topic)
    except ContractError as err:
        expect_reason(err)
        return
    assert parsed.path == topic


@fuzz(2)
@given(community=ID, gateway=ID, kind=KINDS)
def test_topics_round_trip(community: str, gateway: str, kind: TopicKind) -> None:
    topic = Topic(community, gateway, kind)
    assert Topic.parse(topic.path) == topic
    assert topic.path.count("/") == 4


@fuzz(2)
@given(community=st.none() | st.text(max_size=70), group=st.none() | st.text(max_size=70), kind=KINDS)
def test_subscription_filters_are_built_or_refused(
    community: str | None, group: str | None, kind: TopicKind
) -> None:
    try:
        topic_filter = subscription(kind, community=community, share_group=group)
    except ContractError as err:
        expect_reason(err)
        return
    # Only checked ids reach the filter: no wildcard or level separator can be smuggled in.
    assert topic_filter.count("/") == (6 if group else 4)
    assert "#" not in topic_filter
