"""What a chaos run sent, stored, dead-lettered, counted twice and opened as cases.

- sent: every reading and event a gateway logged *after* its spool accepted it, with the values the
  plan gave it; keyed by (kind, device, ts).
- stored: those found in InfluxDB *with those values* (a point stored with other values is
  ``mismatched``, and lost).
- lost: sent − stored, plus poison messages that never reached the dead letters. A good reading that
  was dead-lettered is lost too (it is reported in ``dead_lettered`` as well): nobody will see it.
  Readings a power cut took legitimately (appended after the spool's last fsync, see
  :mod:`yiwang.chaos.power`) are not in ``lost`` but in ``lost_unsynced``; the ticks they span must
  stay within the spool's ``sync_interval_s`` at every cut (``unsynced_ticks`` ≤
  ``unsynced_bound_ticks``).
- duplicates_counted: from the relational tables, where a redelivered message that was counted again
  stays visible (InfluxDB overwrites a point with itself and hides it): alert firings and case
  evidence recorded twice for one trigger (same alert, same observed time), and one message
  dead-lettered twice (same topic and payload; the poison payloads are unique).
- cases: cases per (grid, category) against those the plan makes inevitable; a second case for one
  (grid, category) is a duplicate.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text

from common.db import make_engine
from contract.profiles import Scalar
from ingest.validate import EVENT_MEASUREMENT
from series.influx import quote_identifier
from yiwang.chaos.gateway import SYNC_INTERVAL_S
from yiwang.chaos.harness import INFLUX_DB, POISON_MARK, TICK_S, Harness
from yiwang.chaos.power import unsynced_ticks
from yiwang.chaos.processes import wait_until

log = logging.getLogger(__name__)
Key = tuple[str, str, int]
"""("T", device, ts) for a reading, ("E", device, ts) for an event."""
TAIL_S = 6.0
SETTLE_S = 150.0  # long enough for a 60 s `for` timer restarted late
# Ticks whose appends can ride on a later fsync: those within one sync interval, plus the one in
# progress (tick timing jitters).
UNSYNCED_TICKS_PER_CUT = int(SYNC_INTERVAL_S / TICK_S) + 1


@dataclass(frozen=True, slots=True)
class Sent:
    values: dict[Key, dict[str, Scalar]]
    tick: dict[Key, int]


@dataclass(frozen=True, slots=True)
class Tally:
    sent: int
    stored: int
    dead_lettered: int
    lost: int
    poison_sent: int
    poison_dead_lettered: int
    duplicates_counted: int
    cases_expected: int
    cases_opened: int
    duplicate_cases: int
    missing_cases: list[str]
    unexpected_cases: list[str]
    mismatched: int = 0
    lost_unsynced: int = 0
    unsynced_ticks: int = 0
    unsynced_bound_ticks: int = 0
    fault_landed: bool = True
    fault: dict[str, Any] = field(default_factory=dict)

    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicates_counted == 0
            and self.duplicate_cases == 0
            and self.cases_opened == self.cases_expected
            and not self.missing_cases
            and self.unsynced_ticks <= self.unsynced_bound_ticks
            and self.fault_landed
        )


def sent_items(h: Harness) -> Sent:
    values: dict[Key, dict[str, Scalar]] = {}
    ticks: dict[Key, int] = {}
    for run in h.gateways.values():
        for line in run.plan.log.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if parts[0] == "T":
                tick, ts = int(parts[1]), int(parts[2])
                for device in run.plan.devices:
                    key = ("T", device, ts)
                    values[key] = run.plan.values(device, tick)
                    ticks[key] = tick
            elif parts[0] == "E":
                key = ("E", parts[2], int(parts[3]))
                values[key] = {"kind": parts[4], "phase": "start"}
                ticks[key] = int(parts[1])
    return Sent(values, ticks)


def _influx(h: Harness, statement: str) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{h.influx_url}/query", data={"q": statement, "db": INFLUX_DB, "epoch": "ms"}, timeout=120
    )
    response.raise_for_status()
    results: list[dict[str, Any]] = response.json().get("results", [])
    if any("error" in r for r in results):
        raise RuntimeError(f"influxd refused {statement!r}: {response.text}")
    return results


def stored_points(h: Harness) -> dict[Key, dict[str, Any]]:
    """Every point in InfluxDB: its fields and tags, by (kind, device, ts)."""
    points: dict[Key, dict[str, Any]] = {}
    for result in _influx(h, "SHOW MEASUREMENTS"):
        for series in result.get("series", []):
            for (measurement,) in series["values"]:
                kind = "E" if measurement == EVENT_MEASUREMENT else "T"
                query = f"SELECT * FROM {quote_identifier(measurement)} GROUP BY device"  # noqa: S608 - InfluxQL, quoted
                for res in _influx(h, query):
                    for s in res.get("series", []):
                        device = s["tags"]["device"]
                        for row in s["values"]:
                            points[(kind, device, int(row[0]))] = dict(zip(s["columns"], row, strict=True))
    return points


def same_value(sent: Scalar, stored: Any) -> bool:
    if isinstance(sent, bool) or isinstance(stored, bool):
        return sent is stored
    if isinstance(sent, int | float) and isinstance(stored, int | float):
        return math.isclose(sent, stored, rel_tol=1e-9, abs_tol=1e-9)
    return bool(sent == stored)


def matches(sent: Mapping[str, Scalar], stored: Mapping[str, Any]) -> bool:
    return all(name in stored and same_value(value, stored[name]) for name, value in sent.items())


@dataclass(frozen=True, slots=True)
class DeadLetters:
    keys: set[Key]
    """Readings and events inside dead-lettered messages."""
    poison: int
    duplicates: int
    """Letters written more than once for one message (same topic and payload)."""


def dead_letters(h: Harness) -> DeadLetters:
    keys: set[Key] = set()
    poison = 0
    db = make_engine(h.postgres.url)
    try:
        with db.connect() as conn:
            rows = conn.execute(text("SELECT topic, payload FROM ingest_dead_letters")).all()
    finally:
        db.dispose()
    letters = [(str(topic), bytes(payload)) for topic, payload in rows]
    for _, raw in letters:
        if POISON_MARK.encode() in raw:
            poison += 1
            continue
        try:
            doc = json.loads(raw)
            kind = "E" if "events" in doc else "T"
            items = doc.get("readings") or doc.get("events") or []
            keys.update((kind, str(i["device"]), int(i["ts"])) for i in items)
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    return DeadLetters(keys, poison, len(letters) - len(set(letters)))


def _scalar(conn: Any, sql: str) -> int:
    return int(conn.execute(text(sql)).scalar_one())


def tally(h: Harness, expected_cases: set[tuple[str, str]]) -> Tally:
    sent = sent_items(h)
    points = stored_points(h)
    present = {k for k in sent.values if k in points}
    stored = {k for k in present if matches(sent.values[k], points[k])}
    dead = dead_letters(h)
    cuts = [c for cs in h.power_cuts.values() for c in cs]
    may_lose = unsynced_ticks(cuts)
    unsynced = {k for k, t in sent.tick.items() if t in may_lose}
    lost = len(set(sent.values) - stored - unsynced) + max(0, h.poison_sent - dead.poison)
    db = make_engine(h.postgres.url)
    try:
        with db.connect() as conn:
            firing = _scalar(conn, "SELECT count(*) FROM alert_history WHERE kind = 'firing'")
            distinct_firing = _scalar(
                conn,
                "SELECT count(*) FROM (SELECT DISTINCT fingerprint, observed_at FROM alert_history"
                " WHERE kind = 'firing') AS t",
            )
            evidence = _scalar(conn, "SELECT count(*) FROM case_evidence")
            distinct_evidence = _scalar(
                conn,
                "SELECT count(*) FROM (SELECT DISTINCT case_id, alert_fingerprint, observed_at"
                " FROM case_evidence) AS t",
            )
            cases = [
                (str(g), str(c)) for g, c in conn.execute(text("SELECT grid, category FROM cases")).all()
            ]
    finally:
        db.dispose()
    opened = set(cases)
    return Tally(
        sent=len(sent.values),
        stored=len(stored),
        dead_lettered=len(dead.keys & set(sent.values)),
        lost=lost,
        poison_sent=h.poison_sent,
        poison_dead_lettered=dead.poison,
        duplicates_counted=(firing - distinct_firing) + (evidence - distinct_evidence) + dead.duplicates,
        cases_expected=len(expected_cases),
        cases_opened=len(cases),
        duplicate_cases=len(cases) - len(opened),
        missing_cases=sorted(f"{g}/{c}" for g, c in expected_cases - opened),
        unexpected_cases=sorted(f"{g}/{c}" for g, c in opened - expected_cases),
        mismatched=len(present - stored),
        lost_unsynced=len(unsynced - stored),
        unsynced_ticks=len(may_lose),
        unsynced_bound_ticks=UNSYNCED_TICKS_PER_CUT * len(cuts),
        fault_landed=h.fault_landed,
        fault=dict(h.fault),
    )


def settled(h: Harness, expected_cases: set[tuple[str, str]]) -> bool:
    """Everything sent is stored (or dead-lettered: lost, no use waiting) and the expected cases are open."""
    t = tally(h, expected_cases)
    return t.lost - t.dead_lettered <= 0 and not t.missing_cases


def wind_down(h: Harness, expected_cases: set[tuple[str, str]], name: str) -> Tally:
    """The end of a run: the gateways stop producing and drain, the stack settles, then count."""
    time.sleep(TAIL_S)
    for run in h.gateways.values():
        run.plan.stop_file.touch()
    wait_until(lambda: all(r.drained() for r in h.gateways.values()), 600, "gateways to drain", 0.5)
    try:
        wait_until(lambda: settled(h, expected_cases), SETTLE_S, "the stack to settle", 2.0)
    except TimeoutError:
        log.warning("%s: not settled after %.0fs; counting what is there", name, SETTLE_S)
    time.sleep(3)  # late duplicates, if any, get their chance to be counted
    return tally(h, expected_cases)
