"""AckingConsumer details ingest relies on: batch cuts by bytes, and no PUBACK across a reconnect."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import SimpleNamespace

from common.consumer import AckingConsumer
from common.settings import MqttSettings


@dataclass
class Msg:
    mid: int
    qos: int = 1
    topic: str = "yiwang/v1/c/g/telemetry"
    payload: bytes = b"x" * 100
    retain: bool = False


class Recorder:
    def __init__(self) -> None:
        self.acked: list[int] = []
        self.subscribed: list[str] = []

    def ack_many(self, mids: list[int]) -> None:
        self.acked += mids

    def subscribe(self, topic: str, qos: int) -> None:
        self.subscribed.append(topic)


def consumer(**kw: object) -> tuple[AckingConsumer, Recorder]:
    c = AckingConsumer(
        name="test",
        client_id="test-consumer",
        settings=MqttSettings(),
        topics=["yiwang/v1/+/+/telemetry"],
        handle=lambda _batch: True,
        stop=threading.Event(),
        **kw,  # type: ignore[arg-type]
    )
    recorder = Recorder()
    c._client = recorder  # type: ignore[assignment]  # the boundary: no broker needed here
    return c, recorder


def connected(c: AckingConsumer, recorder: Recorder) -> None:
    c._on_connect(recorder, None, None, SimpleNamespace(is_failure=False), None)  # type: ignore[arg-type]


def test_messages_of_an_earlier_connection_are_not_acknowledged_on_the_new_one() -> None:
    c, recorder = consumer()
    connected(c, recorder)
    c._on_message(recorder, None, Msg(mid=5))  # type: ignore[arg-type]
    batch = c._next_batch()
    connected(c, recorder)  # reconnect: the broker resends mid 5 itself and may reuse the id
    c._on_message(recorder, None, Msg(mid=7))  # type: ignore[arg-type]
    batch += c._next_batch()
    c._ack(batch)
    assert recorder.acked == [7]


def test_batches_are_cut_by_payload_bytes() -> None:
    c, recorder = consumer(batch_bytes=250, batch_messages=100)
    connected(c, recorder)
    for mid in range(1, 7):
        c._on_message(recorder, None, Msg(mid=mid))  # type: ignore[arg-type]
    sizes = [len(c._next_batch()) for _ in range(2)]
    assert sizes == [3, 3]  # 100-byte payloads: the third one crosses 250 bytes
