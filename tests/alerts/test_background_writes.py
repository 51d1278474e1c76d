"""What the alert service writes beside its stream: the checkpoint's snapshot taken in pieces, one a
tick, and saved whole; the devices' last reports recorded off the stream's thread."""

from __future__ import annotations

import gc
import json
import math
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from alerts import service
from alerts.fleet import device_last_seen
from alerts.intake import CaseBook
from alerts.pauses import Pauses
from alerts.rules import load_rules
from alerts.service import AlertProcessor
from alerts.silences import SilenceStore
from cases.policy import CasePolicy
from tests.alerts.scenario import CONFIG, GATEWAY_OF, Scenario


def processor_of(db: Engine, scenario: Scenario) -> tuple[AlertProcessor, CaseBook]:
    policy = CasePolicy.load(CONFIG)
    book = CaseBook(db, policy, timedelta(minutes=60))
    processor = AlertProcessor(
        scenario.engine,
        book,
        SilenceStore(db),
        threading.Event(),
        partition="zhuganxiang",
        checkpoint_interval_s=0.0,
    )
    return processor, book


def busy_scenario() -> Scenario:
    scenario = Scenario(load_rules(CONFIG, CasePolicy.load(CONFIG).categories))
    for second in range(0, 60, 5):
        for device in ("wl-01", "wl-02", "wl-03"):
            scenario.reading(second, device, level_cm=20.0 + second / 10)
        scenario.reading(second, "th-0101", temperature=22.0, humidity=40.0)
    return scenario


def test_a_checkpoint_taken_in_pieces_is_saved_whole(db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "SNAPSHOT_PIECE", 2)
    scenario = busy_scenario()
    whole = json.loads(json.dumps(scenario.engine.snapshot()))
    assert len(whole["series"]) > 2 * service.SNAPSHOT_PIECE  # several pieces
    processor, book = processor_of(db, scenario)
    ticks = 0
    deadline = time.monotonic() + 30
    while book.load_checkpoint("zhuganxiang") is None and time.monotonic() < deadline:
        processor.tick()
        ticks += 1
        time.sleep(service.TIMER_PERIOD_S + 0.01)
    assert book.load_checkpoint("zhuganxiang") == whole
    assert ticks >= math.ceil(len(whole["series"]) / service.SNAPSHOT_PIECE)
    assert processor.counters.pauses.longest_ms["snapshot"] > 0


def test_each_series_is_saved_as_its_piece_found_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Series are independent: a change after a series' piece was taken waits for the next
    checkpoint (the case store has the alert meanwhile: ``reconcile`` brings it back at a restart)."""
    monkeypatch.setattr(service, "SNAPSHOT_PIECE", 2)
    scenario = busy_scenario()
    flood = "flooding-water-level|zhuganxiang|wl-01"
    keys = scenario.engine.series_keys()
    pieces = service.SnapshotInPieces(keys)
    while pieces.taken <= keys.index(flood):
        assert not pieces.take(scenario.engine)
    assert flood in [
        t.fingerprint for t in scenario.reading(61, "wl-01", level_cm=80.0) if t.kind == "firing"
    ]
    while not pieces.take(scenario.engine):
        pass
    assert set(pieces.state["series"]) == set(keys)
    assert pieces.state["series"][flood]["alert"]["status"] == "inactive"  # as its piece found it
    assert scenario.engine.snapshot()["series"][flood]["alert"]["status"] == "firing"


def test_the_devices_last_reports_are_recorded_beside_the_stream(db: Engine) -> None:
    scenario = busy_scenario()
    processor, _book = processor_of(db, scenario)
    reported = dict(scenario.engine.reported)
    assert {device for _, device in reported} == {"wl-01", "wl-02", "wl-03", "th-0101"}
    processor._last_devices_record = -math.inf  # due at the next tick
    time.sleep(service.TIMER_PERIOD_S + 0.01)
    processor.tick()
    processor.checkpoint()  # a clean stop waits for the record in flight
    assert {key: seen.timestamp() * 1000 for key, seen in device_last_seen(db).items()} == pytest.approx(
        {key: float(ms) for key, ms in reported.items()}
    )
    assert set(GATEWAY_OF) >= {device for _, device in reported}


def test_full_collections_are_timed_while_watched() -> None:
    pauses = Pauses()
    pauses.watch_gc()
    try:
        gc.collect()
    finally:
        pauses.unwatch_gc()
    gc.collect()  # no longer watched: not counted
    report = pauses.snapshot()
    assert report["full_collections"] == 1
    assert report["longest_ms"]["gc2"] >= 0 and set(report["total_ms"]) == {"gc2"}
