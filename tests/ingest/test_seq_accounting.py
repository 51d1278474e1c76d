"""Loss counted from ``seq`` cannot be fooled: a jump no honest loss explains, or a counter that
restarted, is reported on its own (``seq_anomalies``, ``seq_resets``), never as missing messages.

Unit tests of the ledger, then the real ``yiwang ingest`` process on a real Mosquitto: a hostile seq
of 999,999,991 after the low hundreds leaves ``gaps`` at the five messages really missing, in the
heartbeat /healthz shows and on /metrics.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from common.db import make_engine
from common.heartbeat import read_heartbeats
from ingest.seq_ledger import MAX_PLAUSIBLE_JUMP, SeqKind, SeqLedger
from tests.platform import Service, wait_for
from yiwang.bench.ingest import subscribe_session
from yiwang.servers import MosquittoServer, free_port, unique_name

ROOT = Path(__file__).resolve().parents[2]
GW = "zhuganxiang/gw-01"
TOPIC = "yiwang/v1/zhuganxiang/gw-01/telemetry"
TS = 1764183600000
HOSTILE_SEQ = 999_999_991


def feed(ledger: SeqLedger, seqs: list[int], ts: dict[int, int] | None = None) -> list[SeqKind]:
    """Observe ``seqs`` in order; a message's reading is at TS + seq unless ``ts`` says otherwise."""
    ts = ts or {}
    return [ledger.observe(GW, s, ts.get(s, TS + s)).kind for s in seqs]


def gaps(ledger: SeqLedger, seqs: list[int], ts: dict[int, int] | None = None) -> int:
    ts = ts or {}
    return sum(ledger.observe(GW, s, ts.get(s, TS + s)).gaps for s in seqs)


# -- the ledger --------------------------------------------------------------------------------------


def test_a_jump_of_a_billion_after_120_is_an_anomaly_not_gaps() -> None:
    ledger = SeqLedger()
    assert gaps(ledger, list(range(101, 121))) == 0
    hostile = ledger.observe(GW, HOSTILE_SEQ, TS + 121)
    assert hostile.kind is SeqKind.ANOMALY and hostile.gaps == 0
    # The next seq is the baseline: the honest stream goes on without a gap, a reset or a duplicate.
    assert feed(ledger, [121, 122, 123]) == [SeqKind.NEXT] * 3
    assert gaps(ledger, [124]) == 0


def test_a_real_gap_of_five_counts_five_and_late_messages_close_it() -> None:
    ledger = SeqLedger()
    assert gaps(ledger, [1, 2, 8]) == 5  # 3..7 missing
    assert feed(ledger, [5, 3]) == [SeqKind.LATE, SeqKind.LATE]
    assert gaps(ledger, [4]) == -1


def test_the_plausible_bound_is_inclusive() -> None:
    ledger = SeqLedger()
    ledger.observe(GW, 1, TS)
    assert ledger.observe(GW, 2 + MAX_PLAUSIBLE_JUMP, TS + 1).gaps == MAX_PLAUSIBLE_JUMP
    assert ledger.observe(GW, 4 + 2 * MAX_PLAUSIBLE_JUMP, TS + 2).kind is SeqKind.ANOMALY


def test_a_backwards_seq_after_a_wipe_is_a_reset_and_the_new_numbers_are_followed() -> None:
    ledger = SeqLedger()
    assert gaps(ledger, list(range(1, 121))) == 0
    # The spool was wiped: the counter starts again at 1, with readings newer than any before.
    after_wipe = {s: TS + 10_000 + s for s in range(1, 6)}
    assert feed(ledger, [1, 2, 3, 4, 5], after_wipe) == [SeqKind.RESET] + [SeqKind.NEXT] * 4
    assert gaps(ledger, [7], {7: TS + 10_007}) == 1  # loss in the new numbering is loss again


def test_a_seq_far_behind_is_a_reset_even_with_old_timestamps() -> None:
    ledger = SeqLedger()
    feed(ledger, [5_000_000, 5_000_001])
    assert ledger.observe(GW, 1, TS).kind is SeqKind.RESET  # the gateway's clock went back as well


def test_duplicates_are_neither_gaps_nor_resets() -> None:
    ledger = SeqLedger()
    assert feed(ledger, [1, 2, 3]) == [SeqKind.NEXT] * 3
    # A redelivery: the same seq with the same readings, the newest one or an older one.
    assert feed(ledger, [3, 2, 1]) == [SeqKind.DUPLICATE] * 3
    assert gaps(ledger, [3, 2, 4]) == 0


def test_gateways_are_counted_apart() -> None:
    ledger = SeqLedger()
    ledger.observe("c/gw-a", 100, TS)
    ledger.observe("c/gw-b", 1, TS)
    assert ledger.observe("c/gw-b", 3, TS + 1).gaps == 1
    assert ledger.observe("c/gw-a", 101, TS + 1).gaps == 0


# -- the real ingest process -------------------------------------------------------------------------


@pytest.fixture
def ingest(tmp_path: Path, mosquitto: MosquittoServer) -> Iterator[tuple[Service, str, int]]:
    client_id, metrics_port = unique_name("ingest"), free_port()
    db_url = f"sqlite:///{tmp_path}/yiwang.db"
    # The session first, so the broker queues every message for ingest whenever it subscribes.
    subscribe_session(mosquitto.port, client_id)
    env = {
        "YIWANG_MQTT_PORT": str(mosquitto.port),
        "YIWANG_SERIES_URL": f"sqlite:///{tmp_path}/series.db",
        "YIWANG_DATABASE_URL": db_url,
        "YIWANG_CONFIG_DIR": str(ROOT / "config"),
        "YIWANG_INGEST_CLIENT_ID": client_id,
        "YIWANG_INGEST_SPOOL_DIR": str(tmp_path / "spool"),
        "YIWANG_INGEST_METRICS_PORT": str(metrics_port),
    }
    service = Service(["ingest"], env, ROOT, tmp_path / "ingest.log").start()
    try:
        yield service, db_url, metrics_port
    finally:
        service.stop()


def publish(port: int, seqs: list[int]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("gw"))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = []
        for seq in seqs:
            ts = TS + min(seq, 10_000)
            reading = {"device": "wl-01", "ts": ts, "values": {"level_cm": seq % 40}}
            infos.append(client.publish(TOPIC, json.dumps({"seq": seq, "readings": [reading]}), qos=1))
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def metric(text: str, name: str) -> float:
    """The value of ``name{gateway="zhuganxiang/gw-01"}`` (or of ``name``) on /metrics; 0 if absent."""
    for line in text.splitlines():
        if line.startswith(f'{name}{{gateway="{GW}"}} ') or line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.integration
def test_a_hostile_seq_does_not_swamp_ingests_gaps(
    ingest: tuple[Service, str, int], mosquitto: MosquittoServer
) -> None:
    service, db_url, metrics_port = ingest
    url = f"http://127.0.0.1:{metrics_port}/metrics"

    def handled(n: int) -> None:
        def done() -> bool:
            try:
                return metric(httpx.get(url, timeout=2).text, "yiwang_ingest_messages_total") >= n
            except httpx.HTTPError:
                return False

        wait_for(done, 30, f"ingest handled {n} messages; log:\n{service.log()[-2000:]}", 0.1)

    # Each phase is handled before the next is sent, so pipelined batches cannot reorder them.
    publish(mosquitto.port, list(range(101, 121)))  # the demo gateway's low hundreds
    handled(20)
    publish(mosquitto.port, [HOSTILE_SEQ])
    handled(21)
    publish(mosquitto.port, [121, 122, 123, 124, 125, 131])  # 126..130 really lost
    handled(27)

    text = httpx.get(url, timeout=5).text
    assert metric(text, "yiwang_ingest_seq_gaps") == 5
    assert metric(text, "yiwang_ingest_seq_anomalies_total") == 1
    assert metric(text, "yiwang_ingest_seq_resets_total") == 0
    assert metric(text, "yiwang_ingest_duplicate_messages_total") == 0

    # What /healthz shows as ingest's stats is its heartbeat's detail.
    db = make_engine(db_url)
    try:

        def beat() -> dict[str, int] | None:
            beats = [b.detail for b in read_heartbeats(db) if b.service == "ingest"]
            return beats[0] if beats and beats[0].get("messages") == 27 else None

        stats = wait_for(beat, 20, "ingest's heartbeat with all 27 messages", 0.5)
    finally:
        db.dispose()
    assert (stats["gaps"], stats["seq_anomalies"], stats["seq_resets"], stats["duplicates"]) == (5, 1, 0, 0)
