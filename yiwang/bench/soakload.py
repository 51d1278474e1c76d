"""The soak's load: 100-reading messages from ten gateways, each with its own seq, offered at a set rate."""

from __future__ import annotations

import itertools
import struct
import threading
import time
from collections.abc import Iterable, Iterator

from contract import Topic, TopicKind
from yiwang.bench.ingest import FIELD
from yiwang.bench.mqttload import RawPublisher, _packet, _utf8

GATEWAYS, DEVICES, PER_MSG = 10, 100, 100


def device_id(gw: int, i: int) -> str:
    return f"wl-{gw:02d}{i:02d}"


class Load:
    """Messages of 100 readings, gateways in turn, each with its own seq; a reading's ts is the run's
    start plus its gateway's seq (ms), so device + ts is unique and never ahead of the clock while a
    gateway sends fewer than 1,000 messages/s."""

    def __init__(self, base_ms: int) -> None:
        self._base = base_ms
        self._seq = [0] * GATEWAYS
        self._topics = [Topic("bench", f"gw-{gw:02d}", TopicKind.TELEMETRY).path for gw in range(GATEWAYS)]
        # Pre-rendered around the ts: the publisher's JSON work stays small at tens of thousands/s.
        self._parts = [
            [
                (
                    f'{{"device":"{device_id(gw, i)}","ts":',
                    f',"values":{{"{FIELD}":{5 + (gw + i) % 10 / 20:.2f}}}}}',
                )
                for i in range(DEVICES)
            ]
            for gw in range(GATEWAYS)
        ]
        self._gw = itertools.cycle(range(GATEWAYS))

    def __iter__(self) -> Iterator[tuple[str, bytes, int]]:
        return self

    def __next__(self) -> tuple[str, bytes, int]:
        gw = next(self._gw)
        self._seq[gw] += 1
        seq, ts = self._seq[gw], str(self._base + self._seq[gw])
        readings = ",".join(head + ts + tail for head, tail in self._parts[gw])
        return self._topics[gw], f'{{"seq":{seq},"readings":[{readings}]}}'.encode(), PER_MSG


class PacedPublisher(RawPublisher):
    """RawPublisher that sends in installments from one thread, keeping its window across them."""

    def __init__(self, port: int, client_id: str) -> None:
        super().__init__(port, client_id)
        self.sent = 0

    @property
    def acked(self) -> int:
        return self._acked

    def send(self, messages: Iterable[tuple[str, bytes, int]], timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        chunk: list[bytes] = []
        for topic, payload, readings in messages:
            if self.sent - self._acked >= self._window:
                self._sock.sendall(b"".join(chunk))
                chunk = []
                self._wait_for_acks(self.sent - self._window + 1, deadline)
            body = _utf8(topic) + struct.pack("!H", self.sent % 65535 + 1) + payload
            chunk.append(_packet(0x32, body))  # PUBLISH, QoS 1
            self.sent += 1
            self.messages += 1
            self.readings += readings
        if chunk:
            self._sock.sendall(b"".join(chunk))

    def drain(self, timeout: float) -> None:
        """Return once everything sent was PUBACKed."""
        self._wait_for_acks(self.sent, time.monotonic() + timeout)


class Pacer(threading.Thread):
    """Offers ``msgs_per_s`` from ``load`` in 20 ms installments until stopped."""

    def __init__(self, publisher: PacedPublisher, load: Load, msgs_per_s: float) -> None:
        super().__init__(name="soak-pacer", daemon=True)
        self._publisher, self._load, self._rate = publisher, load, msgs_per_s
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        started = time.perf_counter()
        try:
            while not self.halt.is_set():
                due = int((time.perf_counter() - started) * self._rate) - self._publisher.sent
                if due > 0:
                    self._publisher.send(itertools.islice(self._load, due))
                self.halt.wait(0.02)
        except BaseException as err:  # reported by the main thread, which owns the run
            self.error = err
