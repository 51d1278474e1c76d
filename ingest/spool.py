"""The outage spool: points the time-series store could not take yet, kept on local disk.

While the store is down or slow, a batch goes here instead and its messages are acknowledged — the
spool is as durable as the store for that purpose (written to a temporary file, fsynced, then renamed
into place, so a crash leaves either a whole segment or none). A drainer writes the segments back
oldest first and deletes each only after the store accepted it; a crash in between writes it twice,
which is harmless (a point is identified by series + timestamp).

Bounded: past ``max_bytes`` the spool refuses more and the caller keeps the messages unacknowledged,
so the broker holds them (its queue is sized for that). Visible: ``depth_points``, ``depth_bytes``.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Generic, TypeVar

from series.store import Line, Point, Scalar

log = logging.getLogger(__name__)
T = TypeVar("T")


class SpoolFull(Exception):
    """The spool reached its size bound; keep the batch unacknowledged."""


def _encode(items: Sequence[Point | Line]) -> bytes:
    # A point is a [measurement, tags, fields, ts] row; an encoded line stays its text.
    rows = [
        p if isinstance(p, str) else [p.measurement, dict(p.tags), dict(p.fields), p.ts_ms] for p in items
    ]
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _decode(data: bytes) -> list[Point | Line]:
    rows: list[Line | tuple[str, dict[str, str], dict[str, Scalar], int]] = json.loads(data)
    return [row if isinstance(row, str) else Point(*row) for row in rows]


class SegmentSpool(ABC, Generic[T]):
    """Segments ``NNNNNNNNNNNN-COUNT.json`` in one directory, drained in name (= arrival) order.

    Subclasses say how a batch of items becomes the bytes of one segment.
    """

    @staticmethod
    @abstractmethod
    def encode(items: Sequence[T]) -> bytes: ...

    @staticmethod
    @abstractmethod
    def decode(data: bytes) -> list[T]: ...

    def __init__(self, directory: Path, *, max_bytes: int = 1024**3) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        for stale in directory.glob("*.tmp"):  # a crash mid-append: its batch was never acknowledged
            stale.unlink()
        self._segments = sorted(directory.glob("*.json"))
        self._next = int(self._segments[-1].name.split("-")[0]) + 1 if self._segments else 0
        self.depth_bytes = sum(p.stat().st_size for p in self._segments)
        self.depth_points = sum(self._count(p) for p in self._segments)
        if self._segments:
            log.warning("spool %s holds %d points from before a restart", directory, self.depth_points)

    @staticmethod
    def _count(path: Path) -> int:
        return int(path.stem.split("-")[1])

    def __len__(self) -> int:
        with self._lock:
            return len(self._segments)

    def append(self, points: Sequence[T]) -> None:
        """Store a batch durably; SpoolFull when the bound is reached (nothing written then)."""
        data = self.encode(points)
        with self._lock:
            if self.depth_bytes + len(data) > self.max_bytes:
                raise SpoolFull(f"spool {self.directory} is full ({self.depth_bytes} bytes)")
            name = f"{self._next:012d}-{len(points)}"
            self._next += 1
            tmp = self.directory / f"{name}.tmp"
            with tmp.open("wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            final = tmp.with_suffix(".json")
            tmp.rename(final)
            self._segments.append(final)
            self.depth_bytes += len(data)
            self.depth_points += len(points)

    def oldest(self) -> tuple[Path, list[T]] | None:
        segments = self.oldest_segments(1)
        return segments[0] if segments else None

    def oldest_segments(self, max_items: int) -> list[tuple[Path, list[T]]]:
        """The oldest segments holding at most ``max_items`` in all (always at least one, if any)."""
        with self._lock:
            paths: list[Path] = []
            total = 0
            for path in self._segments:
                count = self._count(path)
                if paths and total + count > max_items:
                    break
                paths.append(path)
                total += count
        return [(path, self.decode(path.read_bytes())) for path in paths]

    def remove(self, path: Path) -> None:
        """Forget a segment the store accepted (or that went to the dead letters)."""
        with self._lock:
            size = path.stat().st_size
            path.unlink()
            self._segments.remove(path)
            self.depth_bytes -= size
            self.depth_points -= self._count(path)


class DiskSpool(SegmentSpool[Point | Line]):
    """Points the store could not take yet (JSON rows)."""

    encode = staticmethod(_encode)
    decode = staticmethod(_decode)


_LENGTHS = struct.Struct("<II")


def _encode_messages(items: Sequence[tuple[str, bytes]]) -> bytes:
    # Length-prefixed, not JSON: a payload may be any bytes (a poison message is deferred like the rest).
    out = bytearray()
    for topic, payload in items:
        name = topic.encode("utf-8")
        out += _LENGTHS.pack(len(name), len(payload)) + name + payload
    return bytes(out)


def _decode_messages(data: bytes) -> list[tuple[str, bytes]]:
    messages, at = [], 0
    while at < len(data):
        topic_len, payload_len = _LENGTHS.unpack_from(data, at)
        at += _LENGTHS.size
        topic = data[at : at + topic_len].decode("utf-8")
        at += topic_len
        messages.append((topic, data[at : at + payload_len]))
        at += payload_len
    return messages


class MessageSpool(SegmentSpool[tuple[str, bytes]]):
    """Raw (topic, payload) messages set aside undecoded: a flooding gateway's excess (ingest/fairness.py)."""

    encode = staticmethod(_encode_messages)
    decode = staticmethod(_decode_messages)
