"""The registry bench's stand-ins for ingest and alerts: each its own process, following the registry as
the service does, and saying when a device added to the registry is applied there.

- ingest: a :class:`registry.live.LiveCatalog` whose change swaps the fast decoder on the polling
  thread (``FastDecoder.with_catalog``, what ``BatchWriter.use_catalog`` does); applied = a reading of
  the new device decodes.
- alerts: the change is offered and taken at the engine's next timer tick (every
  ``alerts.service.TIMER_PERIOD_S``), as ``AlertProcessor`` does; applied = the engine judges a reading
  of the new device.

The parent sends the device ids to watch for on ``watch`` (None ends the process); the child answers
``(role, device, wall time applied)`` on ``applied``, and ``(role, "ready", 0.0)`` once loaded.
"""

from __future__ import annotations

import json
import queue
import time
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, Literal

from alerts.engine import AlertEngine
from alerts.rules import load_rules
from alerts.service import TIMER_PERIOD_S
from cases.policy import CasePolicy
from common.db import make_engine
from contract import Reading
from contract.catalog import Catalog
from ingest.fastpath import FastDecoder
from registry.live import LiveCatalog, open_live_catalog

Role = Literal["ingest", "alerts"]
WATER_LEVEL = {"level_cm": 10.0}  # below every rule's threshold: judged, no alert


def follow(
    role: Role,
    url: str,
    config_dir: Path,
    community: str,
    gateway: str,
    watch: Queue[Any],
    applied: Queue[Any],
) -> None:
    """The child process: load, say ready, then report each watched device once it is applied."""
    db = make_engine(url)
    live = open_live_catalog(db, config_dir, poll_s=1.0)  # what ingest and alerts open
    if role == "ingest":
        tick, check = _no_tick, _ingest(live, community, gateway)
    else:
        tick, check = _alerts(live, config_dir, community, gateway)
    live.start()
    applied.put((role, "ready", 0.0))
    watching: set[str] = set()
    try:
        while True:
            try:
                device = watch.get(timeout=0.005)
            except queue.Empty:
                device = ""
            if device is None:
                return
            if device:
                watching.add(device)
            tick()
            for found in [d for d in watching if check(d)]:
                applied.put((role, found, time.time()))
                watching.discard(found)
    finally:
        live.stop()
        db.dispose()


def _no_tick() -> None:
    pass


def _ingest(live: LiveCatalog, community: str, gateway: str) -> Any:
    decoder = [FastDecoder(live.catalog, lines=True)]
    live.on_change(lambda catalog: decoder.__setitem__(0, decoder[0].with_catalog(catalog)))
    topic = f"yiwang/v1/{community}/{gateway}/telemetry"

    def check(device: str) -> bool:
        payload = {
            "seq": 1,
            "readings": [{"device": device, "ts": int(time.time() * 1000), "values": WATER_LEVEL}],
        }
        return decoder[0].decode(topic, json.dumps(payload).encode()) is not None

    return check


def _alerts(live: LiveCatalog, config_dir: Path, community: str, gateway: str) -> tuple[Any, Any]:
    rules = load_rules(config_dir, CasePolicy.load(config_dir).categories)
    engine = AlertEngine(rules, live.catalog)
    offered: list[Catalog | None] = [None]
    live.on_change(lambda catalog: offered.__setitem__(0, catalog))  # AlertProcessor.offer_catalog
    last_tick = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        if now - last_tick[0] >= TIMER_PERIOD_S:  # AlertProcessor.tick
            last_tick[0] = now
            catalog, offered[0] = offered[0], None
            if catalog is not None:
                engine.use_catalog(catalog)

    def check(device: str) -> bool:
        reading = Reading.model_validate(
            {"device": device, "ts": int(time.time() * 1000), "values": WATER_LEVEL}
        )
        engine.on_reading(community, gateway, reading)
        return (community, device) in engine.reported

    return tick, check
