"""Proof that a fault landed: where the gateways' readings are at the moment of a fault.

A reading a gateway logged is, at any moment, in its spool (not yet acknowledged by the broker), in
InfluxDB, or in between: PUBACKed by the broker, so held by the broker or by ingest, which
acknowledges a message only once the store accepted it. With ingest dead or stopped, or the store
down, nothing moves from "in between" to InfluxDB, so a count of it is a backlog provably
unacknowledged by ingest at that moment.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import zlib
from collections.abc import Callable

from sqlalchemy import text

from common.db import make_engine
from yiwang.chaos.harness import Harness

ReadingKey = tuple[str, int]


def logged(h: Harness, since_tick: int = -1) -> set[ReadingKey]:
    """(device, ts) of the readings the gateways logged on ticks after ``since_tick``."""
    keys: set[ReadingKey] = set()
    for run in h.gateways.values():
        for line in run.plan.log.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if parts[0] == "T" and int(parts[1]) > since_tick:
                keys.update((device, int(parts[2])) for device in run.plan.devices)
    return keys


def spooled(h: Harness) -> set[ReadingKey]:
    """Readings still in the gateways' spools (read beside the running gateways: WAL allows it)."""
    keys: set[ReadingKey] = set()
    for run in h.gateways.values():
        with contextlib.closing(sqlite3.connect(run.plan.spool, timeout=30)) as db:
            for (body,) in db.execute("SELECT body FROM chunk WHERE kind = 0"):
                keys.update((str(r["device"]), int(r["ts"])) for r in json.loads(zlib.decompress(body)))
    return keys


def in_between(h: Harness, stored: Callable[[], set[ReadingKey]] | None, since_tick: int = -1) -> int:
    """Readings (of ticks after ``since_tick``) past the gateways and not in the store.

    Call it only while nothing can reach the store (ingest dead or stopped; ``stored`` None: the store
    is down and the ticks are after its fall). Read in this order — log, store, spools — a reading
    that leaves a spool while we look is counted in between, which is where it went.
    """
    sent = logged(h, since_tick)
    in_store = stored() if stored is not None else set()
    return len(sent - in_store - spooled(h))


def stored_readings(h: Harness) -> set[ReadingKey]:
    from yiwang.chaos.accounting import stored_points  # accounting imports the harness too

    return {(device, ts) for kind, device, ts in stored_points(h) if kind == "T"}


def alert_status(h: Harness, subject: str, rule_id: str) -> str | None:
    db = make_engine(h.postgres.url)
    try:
        with db.connect() as conn:
            row = conn.execute(
                text("SELECT status FROM alerts WHERE subject = :s AND rule_id = :r"),
                {"s": subject, "r": rule_id},
            ).first()
    finally:
        db.dispose()
    return None if row is None else str(row[0])
