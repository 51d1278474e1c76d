"""How long an alert-engine checkpoint holds the stream's thread back, encoded in one call or in pieces.

The alert bench's p99 is set by moments when the stream's thread cannot run. The checkpoint is one:
an engine with the bench's devices and rules, windows full, is snapshotted and encoded on a writer
thread (as the service does) while a stand-in stream thread does small steps and records the longest
gap between them. Run in-process on the bench's own configuration, so the state is the engine's real one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alerts.checkpoint import encode_gently
from alerts.engine import AlertEngine
from alerts.rules import load_rules
from cases.policy import CasePolicy
from contract import Reading
from contract.catalog import load_catalog
from yiwang.bench.alert_scenario import COMMUNITY, Scenario

FILL_S = 70.0  # past the longest window of the bench's rules (60 s of samples)
STEP_WORK = 2_000  # the stand-in stream's step: a few microseconds of Python, like one reading


def _filled_engine(config_dir: Path, scenario: Scenario) -> AlertEngine:
    policy = CasePolicy.load(config_dir)
    engine = AlertEngine(load_rules(config_dir, policy.categories), load_catalog(config_dir))
    start_ms = int(time.time() * 1000) - int(FILL_S * 1000)
    for tick in range(round(FILL_S * scenario.plan.hz)):
        ts = start_ms + round(tick * 1000 / scenario.plan.hz)
        for gateway, readings in scenario.readings(tick).items():
            for device, name, value in readings:
                engine.on_reading(COMMUNITY, gateway, Reading(device=device, ts=ts, values={name: value}))
    return engine


def _longest_stall_ms(
    encode: Callable[[dict[str, Any]], str], snapshot: dict[str, Any]
) -> tuple[float, float]:
    gaps: list[float] = []
    stop = threading.Event()

    def stream() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            sum(range(STEP_WORK))
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    time.sleep(0.2)
    began = time.perf_counter()
    writer = threading.Thread(target=encode, args=(snapshot,), daemon=True)
    writer.start()
    writer.join()
    took = time.perf_counter() - began
    time.sleep(0.2)
    stop.set()
    thread.join()
    return took * 1000, max(gaps) * 1000


def run(config_dir: Path, scenario: Scenario) -> dict[str, Any]:
    """``config_dir``: the bench's written configuration (its devices and rules)."""
    engine = _filled_engine(config_dir, scenario)
    began = time.perf_counter()
    snapshot = engine.snapshot()
    snapshot_ms = (time.perf_counter() - began) * 1000
    one_ms, one_stall = _longest_stall_ms(json.dumps, snapshot)
    pieces_ms, pieces_stall = _longest_stall_ms(encode_gently, snapshot)
    return {
        "checkpoint_mb": round(len(encode_gently(snapshot)) / 1e6, 3),
        "checkpoint_snapshot_ms": round(snapshot_ms, 1),
        "checkpoint_one_call": {"encode_ms": round(one_ms), "longest_stall_ms": round(one_stall, 1)},
        "checkpoint_in_pieces": {"encode_ms": round(pieces_ms), "longest_stall_ms": round(pieces_stall, 1)},
    }
