"""BatchWriter: one batch of MQTT messages → points in the store (or the outage spool) + dead letters.

``process`` returns True only when every message of the batch is durably somewhere — the time-series
store, the disk spool or the dead-letter store — and may therefore be acknowledged. It is safe to call
from several threads at once (the consumer pipelines batches: one decodes while another writes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from common.consumer import Inbound, retry_until_stopped
from contract import ContractError
from contract.catalog import Catalog
from ingest.deadletter_gate import DeadLetterGate
from ingest.deadletters import Added, DeadLetter, DeadLetterStore
from ingest.fairness import Deferral
from ingest.fastpath import FastDecoder
from ingest.metrics import IngestMetrics, reason_class
from ingest.seq_ledger import SeqKind, SeqLedger
from ingest.spool import DiskSpool, SpoolFull
from ingest.validate import Decoded, UnknownDevice, decode_telemetry
from series.store import Line, Point, StoreRejected, StoreUnavailable, TimeSeriesStore

log = logging.getLogger(__name__)
RETRYABLE = (StoreUnavailable, SQLAlchemyError)

# The wire contract never retains telemetry or events: the broker would replay a retained one to every
# new subscriber. The flag shows only on a message replayed because we subscribed (MQTT 3.1.1
# §3.3.1.3); refusing it at publish time is the broker's job (ingest/README.md, "Hostile input").
RETAINED_REASON = "retained message: telemetry and events are never retained (the broker would replay it)"


@dataclass
class Counters:
    messages: int = 0
    points: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    gaps: int = 0
    seq_anomalies: int = 0  # a seq implausibly far ahead: not counted as gaps (ingest/seq_ledger.py)
    seq_resets: int = 0  # a seq behind with new content: the gateway's counter restarted
    spooled_points: int = 0

    def snapshot(self) -> dict[str, Any]:
        return dict(vars(self))


class BatchWriter:
    """Stores a batch of messages: points to the series store, failures to the dead-letter store."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: TimeSeriesStore,
        dead: DeadLetterStore,
        stop: threading.Event,
        spool: DiskSpool | None = None,
        metrics: IngestMetrics | None = None,
        deferral: Deferral | None = None,
        gate: DeadLetterGate | None = None,
        look_again: Callable[[], bool] | None = None,
    ) -> None:
        """``look_again`` is asked before a reading of an unknown device is dead-lettered
        (``LiveCatalog.look_again``: True when a newer catalog reached :meth:`use_catalog` meanwhile);
        None: the catalog changes by :meth:`use_catalog` only."""
        self._catalog, self._store, self._dead, self._stop = catalog, store, dead, stop
        self._look_again = look_again
        self._spool = spool
        self._deferral = deferral
        self._gate = gate or DeadLetterGate()
        self._fast = FastDecoder(catalog, lines=store.takes_lines)
        self.metrics = metrics or IngestMetrics()
        self.counters = Counters()
        self._seqs = SeqLedger()
        self._lock = threading.Lock()

    def use_catalog(self, catalog: Catalog) -> None:
        """A newer registry: later batches are checked against it (the device cache keeps the
        communities the registry change did not touch)."""
        fast = self._fast.with_catalog(catalog)
        self._catalog, self._fast = catalog, fast  # a batch in flight may see either: both are whole

    def process(self, batch: list[Inbound]) -> bool:
        """True when every message of the batch is stored, spooled, deferred or dead-lettered, and may
        therefore be acknowledged."""
        if self._deferral is not None:
            # A retained message is refused now: set aside, it would lose the mark that refuses it.
            retained = [m for m in batch if m.retained]
            if retained:
                live = [m for m in batch if not m.retained]
                return self._handle(retained + self._deferral.split(live))
            batch = self._deferral.split(batch)
        return self._handle(batch)

    def _handle(self, batch: list[Inbound]) -> bool:
        decoded: list[tuple[Inbound, Decoded]] = []
        letters: list[DeadLetter] = []
        fast = self._fast.decode
        for msg in batch:
            if msg.retained:
                letters.append(DeadLetter(msg.topic, RETAINED_REASON, msg.payload))
                continue
            quick = fast(msg.topic, msg.payload)
            if quick is not None:
                decoded.append((msg, quick))
                continue
            outcome = self._decode(msg)
            if isinstance(outcome, DeadLetter):
                letters.append(outcome)
            else:
                decoded.append((msg, outcome))
            fast = self._fast.decode  # the registry may have moved meanwhile
        refused = self._write_points(decoded)
        if refused is None:
            return False
        letters += refused
        kept, over_cap = self._gate.admit(letters)
        for letter in kept:
            log.info("dead letter from %.160s: %.300s", letter.topic, letter.reason)
        if over_cap:
            log.warning("%d dead letters over their gateway's rate cap: counted, not kept", over_cap)
        added: list[Added] = []
        if not retry_until_stopped(
            lambda: added.append(self._dead.add_many(kept)), "dead-letter store", self._stop, RETRYABLE
        ):
            return False
        self._count_kept(added[-1], over_cap)
        self._count(decoded, letters)
        return True

    def _decode(self, msg: Inbound) -> Decoded | DeadLetter:
        """The slow path: the message decoded, or the dead letter that names why not."""
        try:
            return decode_telemetry(msg.topic, msg.payload, self._catalog)
        except UnknownDevice as err:
            # Perhaps registered a moment ago: stored from its first reading, not after the next poll.
            if self._look_again is None or not self._look_again():
                return DeadLetter(msg.topic, err.reason, msg.payload)
        except ContractError as err:
            return DeadLetter(msg.topic, err.reason, msg.payload)
        try:  # against the catalog the registry holds now
            return decode_telemetry(msg.topic, msg.payload, self._catalog)
        except ContractError as err:
            return DeadLetter(msg.topic, err.reason, msg.payload)

    # -- writing -------------------------------------------------------------------------------------

    def _store_or_spool(self, points: Sequence[Point | Line]) -> bool:
        """True once the points are in the store or the spool; False when stopped first."""
        # Spool non-empty: the store is (or just was) down. New points queue behind the old ones so
        # the drainer writes them in arrival order; it keeps up at full write speed.
        if self._spool is not None and len(self._spool) and self._try_spool(points):
            return True
        attempts = 2 if self._spool is not None else None
        if retry_until_stopped(
            lambda: self._timed_write(points),
            "time-series store",
            self._stop,
            (StoreUnavailable,),
            first_delay=0.2,
            attempts=attempts,
        ):
            return True
        if self._stop.is_set():
            return False
        if self._try_spool(points):
            return True
        # Spool full: keep retrying with the messages unacknowledged; the broker holds the rest.
        return retry_until_stopped(
            lambda: self._timed_write(points), "time-series store", self._stop, (StoreUnavailable,)
        )

    def _try_spool(self, points: Sequence[Point | Line]) -> bool:
        assert self._spool is not None
        try:
            self._spool.append(points)
        except (SpoolFull, OSError) as err:
            log.error("cannot spool %d points: %s", len(points), err)
            return False
        with self._lock:
            self.counters.spooled_points += len(points)
        self._update_spool_gauges()
        return True

    def _update_spool_gauges(self) -> None:
        if self._spool is not None:
            self.metrics.spool_points.set(self._spool.depth_points)
            self.metrics.spool_bytes.set(self._spool.depth_bytes)

    def _timed_write(self, points: Sequence[Point | Line]) -> None:
        started = time.perf_counter()
        try:
            self._store.write(points)
        except StoreUnavailable:
            self.metrics.write_errors.inc()
            raise
        self.metrics.write_seconds.observe(time.perf_counter() - started)

    def _write_points(self, decoded: list[tuple[Inbound, Decoded]]) -> list[DeadLetter] | None:
        """Dead letters for messages the store refused; None when stopped before the store accepted."""
        points = [p for _, d in decoded for p in d.points]
        if not points:
            return []
        try:
            return [] if self._store_or_spool(points) else None
        except StoreRejected as err:
            if len(decoded) == 1:
                msg = decoded[0][0]
                log.warning("store refused a message from %s: %s", msg.topic, err)
                return [DeadLetter(msg.topic, f"rejected by the time-series store: {err}", msg.payload)]
        # Refused content (a partial write: the rest of the batch *was* written). Bisect to find the
        # refusing messages: one bad point costs O(log n) extra writes, and its neighbours nothing.
        # Rewriting accepted points is harmless: same series + timestamp overwrites itself.
        half = len(decoded) // 2
        letters: list[DeadLetter] = []
        for part in (decoded[:half], decoded[half:]):
            refused = self._write_points(part)
            if refused is None:
                return None
            letters += refused
        return letters

    # -- draining the spool --------------------------------------------------------------------------

    def drain(self) -> None:
        """Write spooled segments back, oldest first, until ``stop``; run it in its own thread."""
        if self._spool is None:
            return
        delay = 0.5
        while not self._stop.is_set():
            oldest = self._spool.oldest()
            if oldest is None:
                self._stop.wait(0.2)
                continue
            path, points = oldest
            try:
                self._timed_write(points)
            except StoreUnavailable as err:
                log.info("spool drain waits: %s", err)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
                continue
            except StoreRejected as err:
                # The segment goes to the dead letters (its points as JSON, as much as a letter keeps;
                # a cut is counted): nothing silently lost.
                reason = f"rejected by the time-series store: {err}"
                letters = [DeadLetter(f"spool:{path.name}", reason, path.read_bytes())]
                added: list[Added] = []
                if not retry_until_stopped(
                    lambda ls=letters, out=added: out.append(self._dead.add_many(ls)),  # type: ignore[misc]
                    "dead-letter store",
                    self._stop,
                    RETRYABLE,
                ):
                    return
                self._count_kept(added[-1], 0)
                self.metrics.dead_letters.labels(reason="store_rejected").inc()
            delay = 0.5
            self._spool.remove(path)
            self._update_spool_gauges()
            log.info("spool: wrote back %d points (%d left)", len(points), self._spool.depth_points)

    def drain_deferred(self, has_spare_capacity: Callable[[], bool], batch_messages: int = 5000) -> None:
        """Handle deferred messages (oldest first, up to ``batch_messages`` at a time) while live
        traffic leaves room, until ``stop``."""
        if self._deferral is None:
            return
        spool = self._deferral.spool
        while not self._stop.is_set():
            segments = spool.oldest_segments(batch_messages) if has_spare_capacity() else []
            if not segments:
                self._stop.wait(0.1)
                continue
            batch = [
                Inbound(mid=0, qos=1, topic=topic, payload=payload)
                for _, messages in segments
                for topic, payload in messages
            ]
            if not self._handle(batch):
                return  # stopped: the segments stay and are handled after the restart
            for path, _ in segments:
                spool.remove(path)
            self.metrics.deferred_depth.set(spool.depth_points)

    # -- accounting ----------------------------------------------------------------------------------

    def _count_kept(self, added: Added, over_cap: int) -> None:
        m = self.metrics
        if over_cap:
            m.dead_letters_discarded.labels(cause="rate_limited").inc(over_cap)
        if added.expired:
            m.dead_letters_discarded.labels(cause="retention").inc(added.expired)
        if added.truncated:
            m.dead_letters_truncated.inc(added.truncated)

    def _count(self, decoded: list[tuple[Inbound, Decoded]], letters: list[DeadLetter]) -> None:
        m = self.metrics
        m.messages.inc(len(decoded) + len(letters))
        m.batches.inc()
        for letter in letters:
            m.dead_letters.labels(reason=reason_class(letter.reason)).inc()
        with self._lock:
            c = self.counters
            c.messages += len(decoded) + len(letters)
            c.dead_letters += len(letters)
            for _, d in decoded:
                c.points += len(d.points)
                m.readings.inc(len(d.points))
                self._count_seq(f"{d.topic.community}/{d.topic.gateway}", d)

    def _count_seq(self, key: str, decoded: Decoded) -> None:
        # Batches finish out of order under pipelining: the ledger tells a late message filling a gap
        # from a redelivery, and both from a seq no honest loss explains.
        outcome = self._seqs.observe(key, decoded.seq, _reading_ts(decoded.points))
        c, m = self.counters, self.metrics
        if outcome.gaps:
            c.gaps += outcome.gaps
            m.seq_gaps.labels(gateway=key).inc(outcome.gaps)
        if outcome.kind is SeqKind.DUPLICATE:
            c.duplicates += 1  # redelivery: the write above overwrote the same points
            m.duplicates.labels(gateway=key).inc()
        elif outcome.kind is SeqKind.ANOMALY:
            c.seq_anomalies += 1
            m.seq_anomalies.labels(gateway=key).inc()
        elif outcome.kind is SeqKind.RESET:
            c.seq_resets += 1
            m.seq_resets.labels(gateway=key).inc()


def _reading_ts(points: Sequence[Point | Line]) -> int | None:
    """The later timestamp (ms) of a message's first and last point: enough to tell its readings from
    older ones, as one message's readings are all new or all redelivered."""
    if not points:
        return None
    return max(_point_ts(points[0]), _point_ts(points[-1]))


def _point_ts(point: Point | Line) -> int:
    if isinstance(point, str):
        return int(point[point.rfind(" ") + 1 :])  # line protocol ends with the timestamp (ms)
    return point.ts_ms
