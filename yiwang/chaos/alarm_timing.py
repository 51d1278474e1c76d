"""When alarms got through, read from what the alert service recorded (``alert_history``).

- A flood's latency: from its first flooding reading's timestamp to the ``at`` of the first firing of
  the flood alert that was neither silenced nor inhibited and carries a case (opened or joined). ``at``
  is the alert service's clock when it recorded the transition, in the same transaction as the case.
- The end of an inhibition after a reconnect: a device of the gateway is kept in alarm (the sentinel).
  The gateway's last will makes that alert unknown; the first reading after the reconnect fires it
  again, recorded with ``inhibited`` as the engine judged it at that reading. Not inhibited: the
  inhibition ended with that reading (0 ms). Inhibited: it ended at the next firing the engine records
  once the inhibition lifts (``tick``, once a second).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text

from common.db import make_engine
from yiwang.chaos.harness import Harness


@dataclass(frozen=True, slots=True)
class Firing:
    at_ms: int
    muted: bool  # silenced or inhibited
    case_id: int | None


def _ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def firings(h: Harness, fingerprint: str) -> list[Firing]:
    """The firing transitions of one alert, in the order the service recorded them."""
    db = make_engine(h.postgres.url)
    try:
        with db.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT at, silenced OR inhibited, case_id FROM alert_history"
                    " WHERE fingerprint = :fp AND kind = 'firing' ORDER BY id"
                ),
                {"fp": fingerprint},
            ).all()
    finally:
        db.dispose()
    return [Firing(_ms(at), bool(muted), case_id) for at, muted, case_id in rows]


def flood_latencies(recorded: Sequence[Firing], reading_ts: Sequence[int]) -> list[int | None]:
    """Per flood (its first reading's ts, ascending), ms until its case was committed; None: never."""
    out: list[int | None] = []
    bounds = [*reading_ts[1:], math.inf]
    for ts, until in zip(reading_ts, bounds, strict=True):
        opened = [f for f in recorded if ts <= f.at_ms < until and not f.muted and f.case_id is not None]
        out.append(opened[0].at_ms - ts if opened else None)
    return out


def muted_at_reading(recorded: Sequence[Firing], reading_ts: Sequence[int]) -> list[bool | None]:
    """Per flood, whether the first firing recorded after its reading was muted (None: none)."""
    bounds = [*reading_ts[1:], math.inf]
    firsts = [
        next((f for f in recorded if ts <= f.at_ms < until), None)
        for ts, until in zip(reading_ts, bounds, strict=True)
    ]
    return [f.muted if f is not None else None for f in firsts]


def inhibition_ends(recorded: Sequence[Firing], restored_ms: Sequence[int]) -> list[int | None]:
    """Per reconnect (wall ms of the restore, ascending), ms from the sentinel's first firing after it
    to its first firing that was not muted; None: still muted when the next cut came."""
    out: list[int | None] = []
    bounds = [*restored_ms[1:], math.inf]
    for restored, until in zip(restored_ms, bounds, strict=True):
        after = [f for f in recorded if restored <= f.at_ms < until]
        if not after:
            out.append(None)
            continue
        free = next((f for f in after if not f.muted), None)
        out.append(free.at_ms - after[0].at_ms if free is not None else None)
    return out


def percentiles(values: Sequence[int | None]) -> dict[str, int | None]:
    """p50 and p99 (nearest rank) of what was measured, and how many never happened."""
    measured = sorted(v for v in values if v is not None)

    def rank(q: float) -> int | None:
        return measured[max(0, math.ceil(q * len(measured)) - 1)] if measured else None

    return {"p50": rank(0.5), "p99": rank(0.99), "n": len(measured), "missing": len(values) - len(measured)}
