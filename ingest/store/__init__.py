"""The time-series store interface: InfluxDB (v1-compatible HTTP API) or the embedded SQLite store.

Both pass the same contract tests (``tests/ingest/test_store_contract.py``). A point is identified by
measurement + tags + timestamp, so writing the same point twice overwrites it (retries are idempotent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

Scalar = bool | int | float | str


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, Scalar]
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Row:
    ts_ms: int
    fields: dict[str, Scalar] = field(default_factory=dict)


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


class TimeSeriesStore(Protocol):
    def write(self, points: Sequence[Point]) -> None:
        """Write a batch; raises StoreUnavailable (retry) or StoreRejected (content refused)."""

    def query(
        self, *, measurement: str, device: str, since_ms: int, until_ms: int | None = None, limit: int = 1000
    ) -> list[Row]:
        """Points of one device in [since_ms, until_ms), oldest first, at most ``limit``."""

    def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot serve requests."""

    def close(self) -> None: ...
