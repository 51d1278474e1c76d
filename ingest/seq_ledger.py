"""Per-gateway ``seq`` accounting: loss (gaps), redeliveries, and seqs no honest loss explains.

A gateway numbers its messages for ever (wire contract: the counter lives in its spool and a number is
given to a message only as it leaves, so a gateway's own outage never skips one). Loss can therefore
only show downstream of the gateway, as a jump bounded by what is in flight or reordered there. A
jump far beyond that bound is not counted as loss: one odd or hostile seq would otherwise swamp the
loss figure operators and the chaos harness read. Such seqs are counted on their own:

- an *anomaly*: a seq more than :data:`MAX_PLAUSIBLE_JUMP` ahead of the highest seen;
- a *reset*: a seq behind the highest seen that neither fills a gap nor repeats a message — its
  readings are newer than any the gateway sent before, or it is more than the bound behind (the
  gateway's spool, and with it the counter, was wiped or replaced).

After either, the next seq is the new baseline: a single odd message costs one count, and a gateway
whose counter really restarted is followed from its new numbers on, without a gap between.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

MAX_PLAUSIBLE_JUMP = 100_000
"""The largest forward jump in one gateway's seqs counted as lost messages. Honest gaps come from
messages still in flight or reordered downstream of the gateway: ingest's pipelined batches finish out
of order by at most writers × batch size (4 × 5,000 by default), the broker's in-flight window is
20,000 (broker/mosquitto.py). It is also as many missing seqs as a gateway's ledger remembers, so a
wider gap could not be closed by its late messages anyway."""

MISSING_CAP = 100_000
"""Missing seqs remembered per gateway, to tell a late message from a duplicate."""


class SeqKind(enum.Enum):
    NEXT = "next"  # a new highest seq, possibly after a plausible gap; or the baseline after a break
    LATE = "late"  # a missing seq arriving late: closes its gap
    DUPLICATE = "duplicate"  # a seq seen before: a redelivery
    ANOMALY = "anomaly"  # implausibly far ahead
    RESET = "reset"  # behind, with new content: the gateway's counter restarted


@dataclass(frozen=True, slots=True)
class SeqOutcome:
    kind: SeqKind
    gaps: int = 0
    """Change to the gateway's open gaps: new missing seqs, or -1 when a late message closes one."""


@dataclass(slots=True)
class _Gateway:
    last: int
    newest_ts_ms: int | None
    missing: set[int] = field(default_factory=set)
    rebase: bool = False  # the next seq becomes the baseline


class SeqLedger:
    """What each gateway's seqs say about loss. Not thread-safe: the caller serialises ``observe``."""

    def __init__(self, max_jump: int = MAX_PLAUSIBLE_JUMP, missing_cap: int = MISSING_CAP) -> None:
        self._max_jump, self._missing_cap = max_jump, missing_cap
        self._gateways: dict[str, _Gateway] = {}

    def observe(self, gateway: str, seq: int, ts_ms: int | None) -> SeqOutcome:
        """Account one message of ``gateway``; ``ts_ms`` is a reading timestamp from it (None when it
        carries none), which tells a restarted counter's new message from a redelivered old one."""
        g = self._gateways.get(gateway)
        if g is None:
            self._gateways[gateway] = _Gateway(seq, ts_ms)
            return SeqOutcome(SeqKind.NEXT)
        if seq in g.missing:
            g.missing.discard(seq)
            return SeqOutcome(SeqKind.LATE, -1)
        if g.rebase:
            g.rebase = False
            g.last = seq
            g.newest_ts_ms = _newer(g.newest_ts_ms, ts_ms)
            return SeqOutcome(SeqKind.NEXT)
        if seq > g.last:
            return self._ahead(g, seq, ts_ms)
        newer = ts_ms is not None and g.newest_ts_ms is not None and ts_ms > g.newest_ts_ms
        if newer or g.last - seq > self._max_jump:
            # Old gaps stay counted as loss; their seqs now belong to the new numbering.
            g.missing.clear()
            g.last, g.rebase = seq, True
            g.newest_ts_ms = _newer(g.newest_ts_ms, ts_ms)
            return SeqOutcome(SeqKind.RESET)
        return SeqOutcome(SeqKind.DUPLICATE)

    def _ahead(self, g: _Gateway, seq: int, ts_ms: int | None) -> SeqOutcome:
        jump = seq - g.last - 1
        if jump > self._max_jump:
            g.rebase = True  # the baseline stays until the next seq says where the stream goes on
            return SeqOutcome(SeqKind.ANOMALY)
        room = self._missing_cap - len(g.missing)
        if jump and room > 0:
            g.missing.update(range(g.last + 1, g.last + 1 + min(jump, room)))
        g.last = seq
        g.newest_ts_ms = _newer(g.newest_ts_ms, ts_ms)
        return SeqOutcome(SeqKind.NEXT, jump)


def _newer(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else max(a, b)
