"""What a chaos run sent, stored, dead-lettered, counted twice and opened as cases.

- sent: (device, ts) of every reading and event the gateways logged *after* their spool accepted it.
- stored: those found in InfluxDB (a point is its series and timestamp; a rewrite overwrites itself).
- dead-lettered: those inside a message in ingest's dead-letter table.
- lost: sent but neither stored nor dead-lettered, plus poison messages that never reached the
  dead letters.
- duplicates_counted: alert transitions or case evidence recorded twice for one trigger (same alert,
  same observed time): a redelivered message that was counted again.
- cases: cases per (grid, category) against those the plan makes inevitable; a second case for one
  (grid, category) is a duplicate.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text

from common.db import make_engine
from series.influx import quote_identifier
from yiwang.chaos.harness import INFLUX_DB, POISON_MARK, Harness
from yiwang.chaos.processes import wait_until

log = logging.getLogger(__name__)
Key = tuple[str, int]
TAIL_S = 6.0
SETTLE_S = 150.0  # long enough for a 60 s `for` timer restarted late


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

    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicates_counted == 0
            and self.duplicate_cases == 0
            and self.cases_opened == self.cases_expected
            and not self.missing_cases
        )


def sent_keys(h: Harness) -> set[Key]:
    keys: set[Key] = set()
    for run in h.gateways.values():
        devices = list(run.plan.devices)
        for line in run.plan.log.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if parts[0] == "T":
                keys.update((d, int(parts[2])) for d in devices)
            elif parts[0] == "E":
                keys.add((parts[1], int(parts[2])))
    return keys


def _influx(h: Harness, statement: str) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{h.influx_url}/query", data={"q": statement, "db": INFLUX_DB, "epoch": "ms"}, timeout=120
    )
    response.raise_for_status()
    results: list[dict[str, Any]] = response.json().get("results", [])
    if any("error" in r for r in results):
        raise RuntimeError(f"influxd refused {statement!r}: {response.text}")
    return results


def stored_keys(h: Harness) -> set[Key]:
    keys: set[Key] = set()
    for result in _influx(h, "SHOW MEASUREMENTS"):
        for series in result.get("series", []):
            for (measurement,) in series["values"]:
                query = f"SELECT * FROM {quote_identifier(measurement)} GROUP BY device"  # noqa: S608 - InfluxQL, quoted
                for res in _influx(h, query):
                    for s in res.get("series", []):
                        device = s["tags"]["device"]
                        keys.update((device, int(row[0])) for row in s["values"])
    return keys


def dead_letters(h: Harness) -> tuple[set[Key], int]:
    """Keys inside dead-lettered messages, and how many dead letters are our poison."""
    keys: set[Key] = set()
    poison = 0
    db = make_engine(h.postgres.url)
    try:
        with db.connect() as conn:
            rows = conn.execute(text("SELECT payload FROM ingest_dead_letters")).all()
    finally:
        db.dispose()
    for (payload,) in rows:
        raw = bytes(payload)
        if POISON_MARK.encode() in raw:
            poison += 1
            continue
        try:
            doc = json.loads(raw)
            items = doc.get("readings") or doc.get("events") or []
            keys.update((str(i["device"]), int(i["ts"])) for i in items)
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    return keys, poison


def _scalar(conn: Any, sql: str) -> int:
    return int(conn.execute(text(sql)).scalar_one())


def tally(h: Harness, expected_cases: set[tuple[str, str]]) -> Tally:
    sent = sent_keys(h)
    stored = stored_keys(h) & sent
    dead, poison_dead = dead_letters(h)
    dead &= sent
    lost = len(sent - stored - dead) + max(0, h.poison_sent - poison_dead)
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
        sent=len(sent),
        stored=len(stored),
        dead_lettered=len(dead),
        lost=lost,
        poison_sent=h.poison_sent,
        poison_dead_lettered=poison_dead,
        duplicates_counted=(firing - distinct_firing) + (evidence - distinct_evidence),
        cases_expected=len(expected_cases),
        cases_opened=len(cases),
        duplicate_cases=len(cases) - len(opened),
        missing_cases=sorted(f"{g}/{c}" for g, c in expected_cases - opened),
        unexpected_cases=sorted(f"{g}/{c}" for g, c in opened - expected_cases),
    )


def settled(h: Harness, expected_cases: set[tuple[str, str]]) -> bool:
    """Everything sent is stored or dead-lettered and the expected cases are open."""
    t = tally(h, expected_cases)
    return t.lost == 0 and not t.missing_cases


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
