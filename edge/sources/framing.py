"""Byte stream → frames for serial line protocols: by delimiter or fixed length, garbage-tolerant.

A serial line delivers what the cable carries: partial lines, bursts of several lines at once, noise
before the first frame, a frame cut by a reconnect. The framer keeps at most ``max_frame_bytes`` of
an unfinished frame; anything longer is garbage and is discarded up to the next delimiter, and
counted, so a babbling device cannot grow memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Framer:
    delimiter: bytes | None = b"\n"
    length: int | None = None
    max_frame_bytes: int = 256
    discarded: int = 0
    _buffer: bytearray = field(default_factory=bytearray)
    _skipping: bool = False

    def feed(self, data: bytes) -> list[bytes]:
        """Complete frames found so far (without their delimiter), oldest first."""
        self._buffer += data
        if self.length is not None:
            return self._by_length(self.length)
        assert self.delimiter is not None
        frames: list[bytes] = []
        while True:
            end = self._buffer.find(self.delimiter)
            if end < 0:
                if len(self._buffer) > self.max_frame_bytes:
                    # No delimiter in sight: drop what we have and skip to the next delimiter.
                    self.discarded += 1 if not self._skipping else 0
                    self._skipping = True
                    keep = len(self.delimiter) - 1
                    del self._buffer[: len(self._buffer) - keep]
                return frames
            frame = bytes(self._buffer[:end])
            del self._buffer[: end + len(self.delimiter)]
            if self._skipping:
                self._skipping = False  # the tail of an over-long frame
                continue
            if len(frame) > self.max_frame_bytes:
                self.discarded += 1
                continue
            if frame.strip():
                frames.append(frame)
        return frames

    def _by_length(self, size: int) -> list[bytes]:
        frames = []
        while len(self._buffer) >= size:
            frames.append(bytes(self._buffer[:size]))
            del self._buffer[:size]
        return frames


def nmea_checksum_ok(sentence: str) -> bool:
    """``$GPGGA,...*hh``: XOR of the characters between ``$`` and ``*`` equals hex ``hh``."""
    if not sentence.startswith(("$", "!")) or "*" not in sentence:
        return False
    body, _, given = sentence[1:].rpartition("*")
    if len(given) != 2:
        return False
    try:
        expected = int(given, 16)
    except ValueError:
        return False
    actual = 0
    for char in body.encode("ascii", errors="replace"):
        actual ^= char
    return actual == expected


def nmea_sentence(body: str) -> str:
    """A complete sentence with its checksum (used by emulators and tests)."""
    checksum = 0
    for char in body.encode("ascii"):
        checksum ^= char
    return f"${body}*{checksum:02X}"
