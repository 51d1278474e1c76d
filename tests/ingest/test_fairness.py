"""Per-gateway fairness: budgets, the deferral spool, and a writer that defers a flooding gateway."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.consumer import Inbound
from common.db import make_engine
from contract.catalog import Catalog, load_catalog
from ingest.deadletters import DeadLetterStore
from ingest.fairness import Deferral, GatewayBudget, gateway_of
from ingest.metrics import IngestMetrics
from ingest.service import BatchWriter
from ingest.spool import MessageSpool
from series.sqlite import SQLiteStore

CONFIG = Path(__file__).resolve().parents[2] / "config"
TS = 1764183600000
GW1, GW2 = "yiwang/v1/zhuganxiang/gw-01/telemetry", "yiwang/v1/zhuganxiang/gw-02/telemetry"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_budget_refills_at_its_rate_up_to_its_burst() -> None:
    clock = Clock()
    budget = GatewayBudget(rate_bytes_per_s=100, burst_bytes=300, clock=clock)
    assert budget.allow("c/a", 300)
    assert not budget.allow("c/a", 1)  # empty, and a refusal takes nothing
    assert budget.allow("c/b", 300)  # another gateway has a bucket of its own
    clock.now += 1.5
    assert budget.allow("c/a", 150)
    assert not budget.allow("c/a", 1)
    clock.now += 60  # a long quiet spell refills only up to the burst
    assert budget.allow("c/a", 300)
    assert not budget.allow("c/a", 1)
    with pytest.raises(ValueError, match="positive"):
        GatewayBudget(0, 10)


@pytest.mark.parametrize(
    ("topic", "gateway"),
    [(GW1, "zhuganxiang/gw-01"), ("yiwang/v1/c/g/event", "c/g"), ("garbage", ""), ("a/b/c/d", "")],
)
def test_the_gateway_comes_from_the_topic(topic: str, gateway: str) -> None:
    assert gateway_of(topic) == gateway


def test_the_message_spool_keeps_any_bytes_across_a_restart(tmp_path: Path) -> None:
    messages = [(GW1, b'{"seq": 1}'), (GW2, b""), ("yiwang/v1/c/g/telemetry", bytes(range(256)) * 3)]
    MessageSpool(tmp_path).append(messages)
    reopened = MessageSpool(tmp_path)
    assert reopened.depth_points == 3
    oldest = reopened.oldest()
    assert oldest is not None and oldest[1] == messages


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CONFIG)


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[SQLiteStore, DeadLetterStore]]:
    store = SQLiteStore(tmp_path / "series.db")
    db = make_engine(f"sqlite:///{tmp_path}/yiwang.db")
    yield store, DeadLetterStore(db)
    store.close()
    db.dispose()


def reading(topic: str, device: str, seq: int) -> Inbound:
    doc = {"seq": seq, "readings": [{"device": device, "ts": TS + seq, "values": {"level_cm": 10.0}}]}
    return Inbound(mid=seq, qos=1, topic=topic, payload=json.dumps(doc).encode())


def stored(store: SQLiteStore, device: str) -> int:
    return len(
        store.query(measurement="water.level", community="zhuganxiang", device=device, since_ms=TS - 1)
    )


def test_a_flooding_gateway_is_deferred_and_caught_up_later(
    tmp_path: Path, catalog: Catalog, parts: tuple[SQLiteStore, DeadLetterStore]
) -> None:
    store, dead = parts
    clock = Clock()
    size = len(reading(GW2, "wl-04", 1).payload)
    spool = MessageSpool(tmp_path / "deferred")
    metrics = IngestMetrics()
    deferral = Deferral(GatewayBudget(size * 5, size * 5, clock=clock), spool, metrics)
    stop = threading.Event()
    writer = BatchWriter(catalog=catalog, store=store, dead=dead, stop=stop, deferral=deferral)

    flood = [reading(GW2, "wl-04", seq) for seq in range(1, 51)]
    normal = [reading(GW1, "wl-01", seq) for seq in range(1, 4)]
    assert writer.process(flood[:25] + normal + flood[25:])  # everything may be acknowledged now
    assert stored(store, "wl-01") == 3  # the normal gateway went straight through
    assert stored(store, "wl-04") == 5  # the flooder got its budget...
    assert spool.depth_points == 45  # ...and the rest waits on disk, not in front of the others
    assert metrics.deferred.labels(gateway="zhuganxiang/gw-02")._value.get() == 45

    busy = threading.Event()  # no spare capacity: nothing is drained
    drainer = threading.Thread(target=writer.drain_deferred, args=(busy.is_set,))
    drainer.start()
    try:
        threading.Event().wait(0.3)
        assert stored(store, "wl-04") == 5
        busy.set()  # spare capacity from now on
        for _ in range(100):
            if spool.depth_points == 0:
                break
            threading.Event().wait(0.05)
    finally:
        stop.set()
        drainer.join(10)
    assert stored(store, "wl-04") == 50
    assert writer.counters.duplicates == 0 and dead.count() == 0


def test_a_full_deferral_spool_means_plain_fifo_not_loss(
    tmp_path: Path, catalog: Catalog, parts: tuple[SQLiteStore, DeadLetterStore]
) -> None:
    store, dead = parts
    size = len(reading(GW2, "wl-04", 1).payload)
    spool = MessageSpool(tmp_path / "deferred", max_bytes=10)
    deferral = Deferral(GatewayBudget(size, size, clock=Clock()), spool, IngestMetrics())
    writer = BatchWriter(catalog=catalog, store=store, dead=dead, stop=threading.Event(), deferral=deferral)
    assert writer.process([reading(GW2, "wl-04", seq) for seq in range(1, 21)])
    assert stored(store, "wl-04") == 20 and spool.depth_points == 0
