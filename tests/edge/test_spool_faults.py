"""Fault injection against a real Mosquitto: broker outage, SIGKILLed agent, network cut, full spool.

After each, every seq the agent assigned was received by a subscriber, and every reading the spool
accepted was received or counted as dropped by the documented policy: no silent gaps.

SIGKILL loops run ``YIWANG_FAULT_REPEATS`` times (default 3 to keep the suite short; nightly ≥ 20);
the network cut lasts ``YIWANG_CUT_S`` seconds (default 3; nightly minutes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.messages import Event, EventMessage, Reading, StateMessage, decode_message
from contract.topics import TopicKind, subscription
from edge.publisher import GatewayPublisher, MqttOptions
from edge.spool import Outgoing, Spool
from tests.edge.test_publisher import Subscriber, decoded_telemetry, keys, wait_for
from yiwang.chaos.proxy import TcpProxy
from yiwang.servers import MosquittoServer, free_port, start_mosquitto

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
REPEATS = int(os.environ.get("YIWANG_FAULT_REPEATS", "3"))
CUT_S = float(os.environ.get("YIWANG_CUT_S", "3"))
T0 = 1_764_183_600_000
GATEWAY = "gw-f"


@pytest.fixture
def community() -> str:
    return f"f-{uuid.uuid4().hex[:10]}"


def tick(second: int, devices: int = 5) -> list[Reading]:
    return [
        Reading(device=f"th-{d:02d}", ts=T0 + second * 1000, values={"temperature": 20.5})
        for d in range(devices)
    ]


def publisher_for(port: int, community: str, spool: Spool, **extra: object) -> GatewayPublisher:
    options = MqttOptions(port=port, reconnect_min_s=0.2, reconnect_max_s=1, max_queued=20, **extra)  # type: ignore[arg-type]
    return GatewayPublisher(community, GATEWAY, spool, [], options)


class Producer:
    """Publishes a tick every few ms on its own thread, as the sources do, until stopped."""

    def __init__(self, publisher: GatewayPublisher) -> None:
        self.publisher = publisher
        self.accepted: list[Reading] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        second = 0
        while not self._stop.is_set():
            batch = tick(second)
            self.publisher.publish_readings(batch)
            self.accepted += batch
            second += 1
            time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def received_seqs(sub: Subscriber) -> set[int]:
    """Seqs of telemetry and event messages: one counter numbers both."""
    events = {decode_message(TopicKind.EVENT, p).seq for p, _ in sub.of_kind(TopicKind.EVENT)}  # type: ignore[union-attr]
    return {m.seq for m in decoded_telemetry(sub)} | events


def all_seqs_arrived(sub: Subscriber, spool: Spool) -> bool:
    return received_seqs(sub) >= set(range(1, spool.stats().last_seq + 1))


def states(sub: Subscriber) -> list[StateMessage]:
    return [decode_message(TopicKind.STATE, p) for p, _ in sub.of_kind(TopicKind.STATE)]  # type: ignore[misc]


def assert_no_silent_gap(sub: Subscriber, spool: Spool, accepted: list[Reading]) -> None:
    stats = spool.stats()
    received = decoded_telemetry(sub)
    assert all_seqs_arrived(sub, spool), "a seq never arrived"
    got = set(keys(r for m in received for r in m.readings))
    missing = set(keys(accepted)) - got
    assert len(missing) == sum(stats.dropped.values()), (
        f"{len(missing)} readings neither received nor counted"
    )


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    broker = start_mosquitto(base_dir=tmp_path / "broker")
    yield broker
    broker.stop()


def test_broker_stopped_while_producing(
    private_broker: MosquittoServer, community: str, tmp_path: Path
) -> None:
    topic = subscription(TopicKind.TELEMETRY, community=community)
    sub = Subscriber(private_broker.host, private_broker.port, topic, client_id=f"sub-{community}")
    with Spool(tmp_path / "gw.sqlite3") as spool:
        publisher = publisher_for(private_broker.port, community, spool)
        publisher.start()
        producer = Producer(publisher)
        try:
            wait_for(lambda: spool.stats().last_seq > 5)
            private_broker.halt()
            depth = spool.depth()
            wait_for(lambda: spool.depth() > depth + 200)  # the agent keeps measuring, on disk
            private_broker.start()
            wait_for(lambda: publisher.connected)
            producer.stop()
            wait_for(lambda: spool.depth() == 0, publisher, timeout=60)
            wait_for(lambda: all_seqs_arrived(sub, spool))
        finally:
            producer.stop()
            publisher.stop()
            sub.close()
        assert_no_silent_gap(sub, spool, producer.accepted)


def test_network_cut_keeps_the_session(mosquitto: MosquittoServer, community: str, tmp_path: Path) -> None:
    proxy = TcpProxy(mosquitto.port)
    sub = Subscriber(mosquitto.host, mosquitto.port, subscription(TopicKind.TELEMETRY, community=community))
    with Spool(tmp_path / "gw.sqlite3") as spool:
        publisher = publisher_for(proxy.port, community, spool)
        publisher.start()
        producer = Producer(publisher)
        try:
            wait_for(lambda: spool.stats().last_seq > 5)
            proxy.cut()
            wait_for(lambda: not publisher.connected)
            time.sleep(CUT_S)  # the outage itself (not an assertion on timing)
            assert spool.depth() > 0
            proxy.restore()
            wait_for(lambda: publisher.connected, timeout=30)
            producer.stop()
            wait_for(lambda: spool.depth() == 0, publisher, timeout=60)
            wait_for(lambda: all_seqs_arrived(sub, spool))
        finally:
            producer.stop()
            publisher.stop()
            sub.close()
            proxy.close()
        assert_no_silent_gap(sub, spool, producer.accepted)


def test_half_open_link_is_given_up_by_keepalive(
    mosquitto: MosquittoServer, community: str, tmp_path: Path
) -> None:
    """A 5G drop sends no FIN or RST: the agent's connection stays open with nothing coming back.
    The agent must notice by its keep-alive, give the connection up and reconnect once the link is
    back, and its spool must bridge the gap."""
    proxy = TcpProxy(mosquitto.port)
    sub = Subscriber(mosquitto.host, mosquitto.port, subscription(TopicKind.TELEMETRY, community=community))
    with Spool(tmp_path / "gw.sqlite3") as spool:
        publisher = publisher_for(proxy.port, community, spool, keepalive_s=1)
        publisher.start()
        producer = Producer(publisher)
        try:
            wait_for(lambda: spool.stats().last_seq > 5)
            proxy.blackhole()
            wait_for(lambda: not publisher.connected, timeout=30)  # by keep-alive: nothing was closed
            wait_for(lambda: proxy.held >= 1, timeout=30)  # it tried again, into the void
            assert spool.depth() > 0
            proxy.restore()
            wait_for(lambda: publisher.connected, timeout=30)
            producer.stop()
            wait_for(lambda: spool.depth() == 0, publisher, timeout=60)
            wait_for(lambda: all_seqs_arrived(sub, spool))
        finally:
            producer.stop()
            publisher.stop()
            sub.close()
            proxy.close()
        assert proxy.accepted >= 2
        assert_no_silent_gap(sub, spool, producer.accepted)


def test_agent_killed_while_writing(mosquitto: MosquittoServer, community: str, tmp_path: Path) -> None:
    spool_path, log_path = tmp_path / "gw.sqlite3", tmp_path / "accepted.log"
    sub = Subscriber(
        mosquitto.host,
        mosquitto.port,
        subscription(TopicKind.TELEMETRY, community=community),
        client_id=f"s-{community}",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def agent(mode: str, start: int) -> subprocess.Popen[bytes]:
        args = [mode, str(spool_path), mosquitto.host, str(mosquitto.port), community, GATEWAY, str(log_path)]
        return subprocess.Popen(
            [sys.executable, str(REPO / "tests/edge/spool_agent.py"), *args, str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def logged() -> int:
        return len(log_path.read_text().splitlines()) if log_path.exists() else 0

    try:
        for run in range(REPEATS):
            before = logged()
            child = agent("produce", run * 100_000)
            try:
                wait_for(lambda before=before: logged() >= before + 50)  # type: ignore[misc]
            finally:
                child.send_signal(signal.SIGKILL)
                child.wait(10)
                assert child.stdout is not None
                child.stdout.close()
        child = agent("drain", 0)
        try:
            out, _ = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == 0 and b"drained" in out
        with Spool(spool_path) as spool:
            wait_for(lambda: all_seqs_arrived(sub, spool))
            accepted = [r for line in log_path.read_text().split() for r in tick(int(line))]
            assert_no_silent_gap(sub, spool, accepted)
            assert sum(spool.stats().dropped.values()) == 0
    finally:
        sub.close()


def test_spool_filled_past_its_limit_then_drained(
    mosquitto: MosquittoServer, community: str, tmp_path: Path
) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port, f"yiwang/v1/{community}/+/+")
    events: list[Event] = []
    accepted: list[Reading] = []
    with Spool(tmp_path / "gw.sqlite3", max_bytes=6_000, live_window_s=0) as spool:
        # Offline: nothing listens on this port, so everything stays in the bounded spool.
        offline = publisher_for(free_port(), community, spool)
        offline.start()
        for second in range(600):
            batch = tick(second)
            offline.publish_readings(batch)
            accepted += batch
            if second % 50 == 0:
                event = Event(
                    device="sm-01", ts=T0 + second * 1000, id=uuid.uuid4(), kind="fire.smoke", phase="start"
                )
                offline.publish_events([event])
                events.append(event)
        offline.stop()
        stats = spool.stats()
        assert stats.bytes <= spool.max_bytes
        assert stats.dropped["downsampled"] > 0 and stats.dropped["refused"] == 0
        publisher = publisher_for(mosquitto.port, community, spool)
        try:
            publisher.start()
            wait_for(lambda: spool.depth() == 0, publisher, timeout=60)
            wait_for(lambda: all_seqs_arrived(sub, spool))
            publisher.publish_state()
            wait_for(lambda: any(s.spool.depth == 0 for s in states(sub) if s.spool))
        finally:
            publisher.stop()
            sub.close()
        assert_no_silent_gap(sub, spool, accepted)
        # The drops are visible to the server: the state message carries their total.
        last = [s for s in states(sub) if s.online and s.spool and s.spool.depth == 0][-1]
        assert last.spool is not None and last.spool.dropped == sum(spool.stats().dropped.values()) > 0
    delivered = [
        e
        for payload, _ in sub.of_kind(TopicKind.EVENT)
        for e in decode_message(TopicKind.EVENT, payload).events  # type: ignore[union-attr]
    ]
    assert {e.id for e in delivered} == {e.id for e in events}, "every alarm survived the full spool"
    assert all(
        isinstance(decode_message(TopicKind.EVENT, p), EventMessage) for p, _ in sub.of_kind(TopicKind.EVENT)
    )


# --- power cut: the spool's recovery from a WAL cut short inside its last unsynced write ----------


def _spool_at(path: Path, *, sync_interval_s: float) -> Spool:
    # Small pages keep the last write short (a few 536-byte frames), so every offset is affordable.
    if not path.exists():
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA page_size=512")
            db.execute("PRAGMA journal_mode=WAL")
    # max_items=2: one tick's 5 readings are 3 chunks in one transaction, which must not come back torn.
    return Spool(path, sync_interval_s=sync_interval_s, live_window_s=0, max_items=2)


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _readings_in(messages: list[Outgoing]) -> list[tuple[str, int]]:
    return sorted(
        (r.device, r.ts)
        for m in messages
        for r in decode_message(TopicKind.TELEMETRY, m.payload).readings  # type: ignore[union-attr]
    )


@pytest.mark.parametrize("last_write", ["append", "ack"])
def test_spool_recovers_from_a_wal_cut_at_every_offset_of_its_last_unsynced_write(
    tmp_path: Path, last_write: str
) -> None:
    """A power cut loses what was not fsynced and can tear the last write at any byte. At every
    offset of the last (unsynced) write the spool opens, passes SQLite's integrity check, and holds
    exactly the state before that write — whole, with its seq counter — or, with the write complete,
    the state after it; and it goes on working (append, claim, ack)."""
    live = tmp_path / "live.sqlite3"
    spool = _spool_at(live, sync_interval_s=3600)  # after the first append, nothing is fsynced by time
    spool.append_readings(tick(0))  # fsynced: the first append, and the claims below
    for message in spool.claim(10):
        assert spool.ack(message.seq)
    spool.append_readings(tick(1))
    claimed = [m.seq for m in spool.claim(10)]  # 3 messages (2 + 2 + 1 readings), fsynced
    before = {"depth": 5, "claimed": claimed, "unsent": []}
    db_bytes = live.read_bytes()
    start = _wal(live).stat().st_size
    if last_write == "append":
        spool.append_readings(tick(2))  # not fsynced: its last fsync is less than an hour old
    else:
        assert spool.ack(claimed[-1])  # an ack is never fsynced on its own
    wal = _wal(live).read_bytes()
    depth_after = spool.depth()
    after = {
        "depth": depth_after,
        "claimed": [m.seq for m in spool.unacked(set(), 10)],
        "unsent": keys(tick(2)) if last_write == "append" else [],
    }
    assert depth_after == 10 if last_write == "append" else 0 < depth_after < 5
    spool.close()
    end = len(wal)
    assert end > start, "the last write went to the WAL"
    crash = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    try:
        path = crash / "spool.sqlite3"
        for offset in range(start, end + 1):
            path.write_bytes(db_bytes)
            _wal(path).write_bytes(wal[:offset])
            path.with_name(path.name + "-shm").unlink(missing_ok=True)
            expected = after if offset == end else before
            with _spool_at(path, sync_interval_s=0) as recovered:
                state = {
                    "depth": recovered.depth(),
                    "claimed": [m.seq for m in recovered.unacked(set(), 10)],
                    "unsent": [],
                }
                assert recovered._db.execute("PRAGMA integrity_check").fetchone() == ("ok",), offset
                assert recovered.stats().last_seq == claimed[-1], offset  # a seq is never reused
                new = recovered.claim(10)
                state["unsent"] = _readings_in(new)
                assert state == expected, f"offset {offset} of {start}..{end}"
                assert [m.seq for m in new] == list(range(claimed[-1] + 1, claimed[-1] + 1 + len(new))), (
                    offset
                )
                for m in [*new, *recovered.unacked(set(), 10)]:
                    recovered.ack(m.seq)
                assert recovered.depth() == 0, offset
    finally:
        shutil.rmtree(crash, ignore_errors=True)
