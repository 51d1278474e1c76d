"""Each limit that keeps a hostile gateway from growing ingest's memory or storage, one at a time.

The attack on the real process is tests/security/test_hostile_gateway.py; these pin each limit down.
"""

from __future__ import annotations

import json
import random
import string
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.consumer import Inbound
from common.db import make_engine
from contract import ContractError, Topic, TopicKind
from contract.catalog import Catalog, DeviceInfo, load_catalog
from contract.events import AGENT_EVENT_KINDS
from ingest.deadletter_gate import DeadLetterGate
from ingest.deadletters import MAX_REASON_BYTES, MAX_TOPIC_BYTES, DeadLetter, DeadLetterStore
from ingest.fairness import OTHERS, GatewayBudget
from ingest.fastpath import FastDecoder
from ingest.metrics import reason_class
from ingest.service import BatchWriter
from ingest.validate import decode_telemetry
from series.sqlite import SQLiteStore

CONFIG = Path(__file__).resolve().parents[2] / "config"
TS = 1764183600000
RNG = random.Random(7)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CONFIG)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/yiwang.db"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "series.db")
    yield store
    store.close()


def camera(catalog: Catalog) -> DeviceInfo:
    info = catalog.device_in("zhuganxiang", "cam-01")
    assert info is not None
    return info


def telemetry_topic(catalog: Catalog) -> str:
    info = camera(catalog)
    return Topic(info.community.id, info.gateway.id, TopicKind.TELEMETRY).path


def telemetry(device: str, seq: int = 1) -> bytes:
    return json.dumps(
        {"seq": seq, "readings": [{"device": device, "ts": TS + seq, "values": {"level_cm": 1.0}}]}
    ).encode()


def events(kind: str, device: str = "cam-01", seq: int = 1) -> bytes:
    event = {"device": device, "ts": TS, "id": str(uuid.uuid4()), "kind": kind, "phase": "instant"}
    return json.dumps({"seq": seq, "events": [event]}).encode()


def letters(n: int) -> str:
    return "".join(RNG.choices(string.ascii_lowercase, k=n))


def allocated_while(action: object) -> int:
    """Bytes still allocated after ``action`` ran (what it keeps, not what it used)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        action()  # type: ignore[operator]
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


# -- the fast path keeps catalog devices only ---------------------------------------------------------


def test_unknown_device_ids_of_any_length_are_not_kept(catalog: Catalog) -> None:
    fast = FastDecoder(catalog, lines=True)
    topic = telemetry_topic(catalog)
    huge = [telemetry(letters(200_000), seq) for seq in range(100)]
    valid = [telemetry(letters(64), seq) for seq in range(2000)]

    def decode_all() -> None:
        for payload in huge + valid:
            assert fast.decode(topic, payload) is None  # unknown: the contract's decoder explains

    # 20 MB of huge ids and 128 kB of valid ones went through; none of it stays.
    assert allocated_while(decode_all) < 200_000


class CountingCatalog(Catalog):
    """Fault injection at the catalog boundary: counts lookups."""

    def __init__(self, inner: Catalog) -> None:
        self.__dict__.update(inner.__dict__)
        self.lookups = 0

    def device(self, community: str, gateway: str, device: str) -> DeviceInfo | None:
        self.lookups += 1
        return super().device(community, gateway, device)


def test_an_id_longer_than_the_contract_allows_is_refused_before_any_lookup(catalog: Catalog) -> None:
    counting = CountingCatalog(catalog)
    fast = FastDecoder(counting, lines=True)
    assert fast.decode(telemetry_topic(catalog), telemetry("a" * 65)) is None
    assert counting.lookups == 0
    assert fast.decode(telemetry_topic(catalog), telemetry("a" * 64)) is None
    assert counting.lookups == 1
    with pytest.raises(ContractError, match=r"readings\.0\.device"):
        decode_telemetry(telemetry_topic(catalog), telemetry("a" * 65), counting)
    assert counting.lookups == 1


def test_a_catalog_device_is_still_cached_and_decoded_fast(catalog: Catalog) -> None:
    counting = CountingCatalog(catalog)
    fast = FastDecoder(counting, lines=True)
    info = next(d for d in catalog.devices() if d.profile.id == "water.level@1")
    topic = Topic(info.community.id, info.gateway.id, TopicKind.TELEMETRY).path
    for seq in range(1, 4):
        assert fast.decode(topic, telemetry(info.device.id, seq)) is not None
    assert counting.lookups == 1


def test_invalid_and_overlong_topics_are_not_kept(catalog: Catalog) -> None:
    fast = FastDecoder(catalog, lines=True)
    long_id = letters(60_000)

    def decode_all() -> None:
        # Each topic a new string, as each message off the wire brings its own.
        for n in range(50):
            assert fast.decode(f"yiwang/v1/{long_id}{n}/gw/telemetry", telemetry("wl-01")) is None
        for n in range(2000):
            assert fast.decode(f"yiwang/v1/BAD{n}/gw-01/telemetry", telemetry("wl-01")) is None

    assert allocated_while(decode_all) < 100_000


# -- budgets per gateway are bounded in number --------------------------------------------------------


def test_gateway_budgets_are_bounded_and_new_names_share_one_bucket() -> None:
    now = [0.0]
    budget = GatewayBudget(100, 1000, clock=lambda: now[0], max_gateways=10)
    for n in range(1000):
        assert budget.allow(f"c/{letters(64)}-{n}", 1) or n >= 10  # the first ten have a bucket each
    assert len(budget) <= 11
    # The shared bucket runs dry: invented names do not each bring a fresh burst.
    assert not all(budget.allow(f"c/new-{n}", 10) for n in range(200))
    # Once the buckets refill they equal new ones and make room for new gateways.
    now[0] += 100
    assert budget.allow("c/fresh", 1)
    assert budget.tracks("c/fresh") and not budget.tracks(OTHERS)


# -- dead letters: rate cap, truncation, retention ----------------------------------------------------


def test_dead_letters_are_capped_per_gateway_and_the_rest_counted() -> None:
    now = [0.0]
    gate = DeadLetterGate(per_s=10, burst=20, clock=lambda: now[0])
    evil = [DeadLetter("yiwang/v1/c/evil/telemetry", "bad", b"x")] * 1000
    kept, over = gate.admit(evil)
    assert (len(kept), over) == (20, 980)
    # Another gateway keeps its own allowance.
    kept, over = gate.admit([DeadLetter("yiwang/v1/c/good/telemetry", "bad", b"x")] * 5)
    assert (len(kept), over) == (5, 0)
    now[0] += 1
    assert len(gate.admit(evil)[0]) == 10


def test_dead_letter_payload_reason_and_topic_are_cut_to_their_limits(database_url: str) -> None:
    # On PostgreSQL an overlong topic would not fit its column: refused, retried, the pipeline stalled.
    db = make_engine(database_url)
    try:
        dead = DeadLetterStore(db, keep_payload_bytes=1000)
        added = dead.add_many(
            [
                DeadLetter("t" * 5000, "r" * 50_000, b"p" * 100_000),
                DeadLetter("yiwang/v1/c/g/telemetry", "short", b"small"),
            ]
        )
        assert (added.truncated, added.expired) == (1, 0)
        small, big = dead.latest()
        assert big.payload == b"p" * 1000
        assert "payload of 100000 bytes, first 1000 kept" in big.reason
        assert len(big.reason.encode()) <= MAX_REASON_BYTES
        assert len(big.topic) <= MAX_TOPIC_BYTES
        assert (small.topic, small.reason, small.payload) == ("yiwang/v1/c/g/telemetry", "short", b"small")
    finally:
        db.dispose()


def test_dead_letters_keep_within_their_size_budget_expiring_the_oldest(database_url: str) -> None:
    db = make_engine(database_url)
    try:
        budget = 100 * DeadLetterStore.row_bytes_for(1000)
        dead = DeadLetterStore(db, max_bytes=budget, keep_payload_bytes=1000)
        expired = 0
        for batch in range(30):
            added = dead.add_many(
                [DeadLetter("yiwang/v1/c/g/telemetry", f"bad {batch}-{n}", b"p" * 5000) for n in range(10)]
            )
            expired += added.expired
        assert dead.count() == 100 and expired == 200
        assert dead.size_bytes() <= budget
        assert dead.latest(1)[0].reason.startswith("bad 29-9")  # the newest are kept
    finally:
        db.dispose()


# -- event kinds: only the profile's ------------------------------------------------------------------


def event_topic(catalog: Catalog) -> str:
    info = camera(catalog)
    return Topic(info.community.id, info.gateway.id, TopicKind.EVENT).path


def test_an_event_kind_outside_the_devices_profile_is_refused_with_its_reason(catalog: Catalog) -> None:
    with pytest.raises(ContractError, match=r"events\.0\.kind: unknown event kind 'camera.xyzzy' for camera"):
        decode_telemetry(event_topic(catalog), events("camera.xyzzy"), catalog)
    for kind in [*camera(catalog).profile.events, *AGENT_EVENT_KINDS]:
        [point] = decode_telemetry(event_topic(catalog), events(kind), catalog).points
        assert point.tags["kind"] == kind  # type: ignore[union-attr]


def test_a_device_without_event_kinds_sends_only_the_agents(catalog: Catalog) -> None:
    info = next(
        d for d in catalog.devices() if not d.profile.events and d.gateway.id == camera(catalog).gateway.id
    )
    with pytest.raises(ContractError, match="unknown event kind"):
        decode_telemetry(event_topic(catalog), events("camera.motion", info.device.id), catalog)
    assert decode_telemetry(event_topic(catalog), events("device.unavailable", info.device.id), catalog)


# -- the writer: retained refused, discards counted ---------------------------------------------------


def test_retained_messages_are_dead_lettered_and_the_discards_counted(
    catalog: Catalog, store: SQLiteStore, db_url: str
) -> None:
    db = make_engine(db_url)
    try:
        dead = DeadLetterStore(db, keep_payload_bytes=100)
        writer = BatchWriter(
            catalog=catalog, store=store, dead=dead, stop=threading.Event(), gate=DeadLetterGate(1, 2)
        )
        retained = [
            Inbound(1, 1, event_topic(catalog), events("camera.motion"), retained=True),
            Inbound(2, 1, telemetry_topic(catalog), telemetry("wl-01"), retained=True),
        ]
        poison = [Inbound(3 + n, 1, telemetry_topic(catalog), b"{" + b"x" * 500) for n in range(5)]
        assert writer.process(retained + poison)
        assert [d.reason.startswith("retained message") for d in reversed(dead.latest())] == [True, True]
        assert store.query(measurement="events", community="zhuganxiang", device="cam-01", since_ms=0) == []
        assert (
            store.query(measurement="water.level", community="zhuganxiang", device="wl-01", since_ms=0) == []
        )
        sample = writer.metrics.registry.get_sample_value
        assert sample("yiwang_ingest_dead_letters_total", {"reason": "retained"}) == 2
        assert sample("yiwang_ingest_dead_letters_discarded_total", {"cause": "rate_limited"}) == 5
        assert sample("yiwang_ingest_messages_total") == 7  # handled, every one of them
    finally:
        db.dispose()


def test_new_reasons_have_their_own_labels() -> None:
    assert reason_class("retained message: telemetry and events are never retained") == "retained"
    assert reason_class("events.0.kind: unknown event kind 'a.b' for camera.events@1") == "unknown_event_kind"
