"""Per-gateway fairness: a gateway flooding far above its share cannot starve the others.

Messages arrive from the broker in one FIFO stream, so a gateway sending 10× its normal rate delays
every other gateway's readings behind its own once ingest runs at capacity. Each gateway therefore
gets a byte budget (a token bucket over payload bytes, refilled at ``rate`` with ``burst`` headroom).
Within budget a message takes the normal path. Over budget it is *deferred*: set aside undecoded in a
durable on-disk spool (ingest/spool.py ``MessageSpool``, one fsynced append per batch) and
acknowledged; a drainer feeds the deferred messages through the normal path whenever ingest has spare
capacity. Nothing is dropped: when the deferral spool is full, messages take the normal path again
(back to plain FIFO — bounded disk, not lost data).

The gateway is read from the topic without decoding the payload, so deferring costs microseconds:
that is what keeps the live path free. Budgets are bytes, not readings, for the same reason.

The broker is the first line in production (EMQX limits messages and bytes per client); this keeps a
single misbehaving gateway from costing the others their latency when the broker cannot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from common.consumer import Inbound
from contract.topics import MAX_TOPIC_LENGTH
from ingest.metrics import IngestMetrics
from ingest.spool import MessageSpool, SpoolFull

log = logging.getLogger(__name__)


MAX_GATEWAYS = 10_000
"""Buckets kept at most: far more gateways than one ingest serves, and a bound on invented names."""
OTHERS = "*"
"""The bucket every gateway beyond ``MAX_GATEWAYS`` shares until room is made."""


def gateway_of(topic: str) -> str:
    """``community/gateway`` of ``yiwang/v1/<community>/<gateway>/<kind>`` ("" for a malformed or
    overlong topic: those share one budget and go to the dead letters when decoded)."""
    if len(topic) > MAX_TOPIC_LENGTH:
        return ""
    parts = topic.split("/", 5)
    return f"{parts[2]}/{parts[3]}" if len(parts) >= 5 else ""


@dataclass
class _Bucket:
    tokens: float
    refilled: float


class GatewayBudget:
    """Token buckets (of bytes, or of any unit), one per gateway, at most ``max_gateways``; thread-safe.

    A bucket refilled to its burst is the same as a new one, so those are dropped to make room for a
    new gateway. While none can be dropped, new gateways share the ``OTHERS`` bucket: invented gateway
    names cost a bounded amount of memory and cannot each bring a fresh burst.
    """

    def __init__(
        self,
        rate_bytes_per_s: float,
        burst_bytes: float,
        clock: Callable[[], float] = time.monotonic,
        max_gateways: int = MAX_GATEWAYS,
    ) -> None:
        if rate_bytes_per_s <= 0 or burst_bytes <= 0:
            raise ValueError("a gateway budget needs a positive rate and burst")
        self.rate, self.burst, self._clock = rate_bytes_per_s, burst_bytes, clock
        self.max_gateways = max_gateways
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._buckets)

    def tracks(self, gateway: str) -> bool:
        """Whether the gateway has a bucket of its own (else it shares ``OTHERS``)."""
        return gateway in self._buckets

    def _new_bucket(self, gateway: str, now: float) -> _Bucket:
        if len(self._buckets) >= self.max_gateways and now >= self._next_sweep:
            # At most once per refill time: a sweep that frees nothing is not repeated per message.
            self._next_sweep = now + min(1.0, self.burst / self.rate)
            for key in [
                k for k, b in self._buckets.items() if b.tokens + (now - b.refilled) * self.rate >= self.burst
            ]:
                del self._buckets[key]
        if len(self._buckets) >= self.max_gateways:
            gateway = OTHERS
            bucket = self._buckets.get(gateway)
            if bucket is not None:
                return bucket
        bucket = self._buckets[gateway] = _Bucket(self.burst, now)
        return bucket

    def allow(self, gateway: str, size: int) -> bool:
        """Take ``size`` bytes from the gateway's bucket; False (nothing taken) when it has too few."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(gateway)
            if bucket is None:
                bucket = self._new_bucket(gateway, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.refilled) * self.rate)
            bucket.refilled = now
            if bucket.tokens < size:
                return False
            bucket.tokens -= size
            return True


class Deferral:
    """Sets a batch's over-budget messages aside in the deferral spool; hands back the rest."""

    def __init__(self, budget: GatewayBudget, spool: MessageSpool, metrics: IngestMetrics) -> None:
        self.budget, self.spool, self._metrics = budget, spool, metrics

    def split(self, batch: list[Inbound]) -> list[Inbound]:
        """The messages to handle now. The others are durably in the spool when this returns."""
        allow = self.budget.allow
        over = [(m, gw) for m in batch if not allow(gw := gateway_of(m.topic), len(m.payload))]
        if not over:
            return batch
        try:
            self.spool.append([(m.topic, m.payload) for m, _ in over])
        except (SpoolFull, OSError) as err:
            log.warning("cannot defer %d messages (%s): handling them now", len(over), err)
            return batch
        tracks = self.budget.tracks
        for _, gateway in over:
            # Gateways without a bucket of their own share one label, as they share one budget.
            self._metrics.deferred.labels(gateway=gateway if tracks(gateway) else OTHERS).inc()
        self._metrics.deferred_depth.set(self.spool.depth_points)
        set_aside = {id(m) for m, _ in over}
        return [m for m in batch if id(m) not in set_aside]
