"""The time-series store interface: InfluxDB (v1-compatible HTTP API) or the embedded SQLite store.

Both pass the same contract tests (``tests/series/test_store_contract.py``). A point is identified by
measurement + tags + timestamp, so writing the same point twice overwrites it (retries are idempotent).
A device is identified by its ``community`` and ``device`` tags together: two communities may both have
a ``smoke-01``, so every read names both. An empty ``community`` means points without that tag.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Scalar = bool | int | float | str
Aggregate = Literal["mean", "min", "max"]
AGGREGATES: tuple[Aggregate, ...] = ("mean", "min", "max")
DeviceKey = tuple[str, str]  # (community, device): a device id is unique only within its community


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, Scalar]
    ts_ms: int


# A point already encoded as one line of line protocol: what ingest's fast path gives a store that
# ``takes_lines``, as building a Point per reading costs more than decoding it. It must be exactly what
# :func:`series.lineprotocol.encode_point` gives for the point (tests/ingest/test_fastpath.py).
Line = str


@dataclass(frozen=True, slots=True)
class Row:
    ts_ms: int
    fields: dict[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One aggregation window: it starts at ``start_ms`` (aligned to the epoch, like InfluxDB's
    ``GROUP BY time``) and holds at least one numeric value."""

    start_ms: int
    value: float


class StoreError(Exception):
    """Root of time-series store errors."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or failed; the batch may be retried unchanged."""


class StoreRejected(StoreError):
    """The store refused (part of) a batch for its content; retrying the same batch will not help."""


class PartialWrite(StoreRejected):
    """Some points of a batch were refused; all the others were written.

    ``dropped`` counts the refused points as far as they are known: InfluxDB 1.x reports lines it
    could not parse as ``dropped=0``, so read it as "at least".
    """

    def __init__(self, message: str, *, dropped: int) -> None:
        super().__init__(message)
        self.dropped = dropped


def check_aggregate(fn: str, window_ms: int) -> None:
    """The arguments every store's ``aggregate`` refuses alike."""
    if fn not in AGGREGATES:
        raise ValueError(f"unknown aggregate {fn!r}; one of {', '.join(AGGREGATES)}")
    if window_ms <= 0:
        raise ValueError(f"window_ms must be positive, got {window_ms}")


class TimeSeriesStore(Protocol):
    # True when ``write`` takes encoded lines as well as points (InfluxDB); False: points only.
    takes_lines: bool

    def write(self, points: Sequence[Point | Line]) -> None:
        """Write a batch; raises StoreUnavailable (retry) or StoreRejected (content refused)."""

    def query(
        self,
        *,
        measurement: str,
        community: str,
        device: str,
        since_ms: int,
        until_ms: int | None = None,
        limit: int = 1000,
    ) -> list[Row]:
        """Points of one device of one community in [since_ms, until_ms), oldest first, at most ``limit``."""

    def aggregate(
        self,
        *,
        measurement: str,
        community: str,
        device: str,
        field: str,
        fn: Aggregate,
        window_ms: int,
        since_ms: int,
        until_ms: int,
    ) -> list[Bucket]:
        """``fn`` of the numeric ``field`` per window in [since_ms, until_ms); empty windows left out."""

    def latest(self, *, measurement: str) -> dict[DeviceKey, Row]:
        """The newest point of every device of ``measurement`` (its fields), by (community, device)."""

    def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot serve requests."""

    def close(self) -> None: ...
