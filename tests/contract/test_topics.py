import pytest

from contract import ContractError, Topic, TopicKind, subscription


@pytest.mark.parametrize(
    ("path", "community", "gateway", "kind"),
    [
        ("yiwang/v1/zhuganxiang/gw-01/telemetry", "zhuganxiang", "gw-01", TopicKind.TELEMETRY),
        ("yiwang/v1/c/g/event", "c", "g", TopicKind.EVENT),
        ("yiwang/v1/a-1/0/state", "a-1", "0", TopicKind.STATE),
        ("yiwang/v1/x/y/devices", "x", "y", TopicKind.DEVICES),
        ("yiwang/v1/x/y/config", "x", "y", TopicKind.CONFIG),
        (f"yiwang/v1/{'a' * 64}/gw/telemetry", "a" * 64, "gw", TopicKind.TELEMETRY),
    ],
)
def test_valid_topics_round_trip(path: str, community: str, gateway: str, kind: TopicKind) -> None:
    topic = Topic.parse(path)
    assert (topic.community, topic.gateway, topic.kind) == (community, gateway, kind)
    assert topic.path == path == str(topic)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("yiwang/v2/c/g/telemetry", "expected yiwang/v1"),
        ("yiwang/v1/c/g", "expected yiwang/v1"),
        ("yiwang/v1/c/g/telemetry/extra", "expected yiwang/v1"),
        ("yiwang/v1/c/g/metrics", "unknown kind 'metrics'"),
        ("yiwang/v1/Zhuganxiang/g/telemetry", "invalid community id"),
        ("yiwang/v1/c/gw_01/telemetry", "invalid gateway id"),
        ("yiwang/v1//g/telemetry", "invalid community id"),
        (f"yiwang/v1/{'a' * 65}/g/telemetry", "invalid community id"),
        ("yiwang/v1/+/g/telemetry", "invalid community id"),
        ("yiwang/v1/c/#/telemetry", "invalid gateway id"),
        ("", "expected yiwang/v1"),
    ],
)
def test_invalid_topics_say_why(path: str, reason: str) -> None:
    with pytest.raises(ContractError, match=reason):
        Topic.parse(path)


def test_wrong_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        Topic.parse(b"yiwang/v1/c/g/telemetry")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Topic("c", "g", "telemetry")  # type: ignore[arg-type]


def test_retained_kinds_follow_the_contract() -> None:
    retained = {TopicKind.STATE, TopicKind.DEVICES, TopicKind.CONFIG, TopicKind.VERSION}
    assert {k for k in TopicKind if k.retained} == retained
    assert not TopicKind.CONFIG.upstream and not TopicKind.VERSION.upstream


def test_subscriptions() -> None:
    assert subscription(TopicKind.TELEMETRY) == "yiwang/v1/+/+/telemetry"
    assert subscription(TopicKind.EVENT, community="zhuganxiang") == "yiwang/v1/zhuganxiang/+/event"
    assert subscription(TopicKind.TELEMETRY, share_group="ingest") == "$share/ingest/yiwang/v1/+/+/telemetry"
    with pytest.raises(ContractError):
        subscription(TopicKind.TELEMETRY, community="bad/id")
