"""A QoS 1 load generator that keeps up with Mosquitto: MQTT 3.1.1 spoken directly on a socket.

paho's publisher tops out at ~4-7k msgs/s here (per-message bookkeeping in Python) and
``mosquitto_pub -l`` stops early at QoS 1, so neither can offer the 10k+ msgs/s this bench needs.
This one writes pre-framed PUBLISH packets in chunks, counts PUBACKs in a reader thread, and keeps at
most ``window`` messages unacknowledged. A message counts as published once the broker PUBACKed it.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Sequence


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _remaining_length(len(body)) + body


def _utf8(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("!H", len(raw)) + raw


class RawPublisher:
    def __init__(self, port: int, client_id: str, *, window: int = 5000, host: str = "127.0.0.1") -> None:
        if not 0 < window < 65535:
            raise ValueError("window must be within 1..65534 (packet ids are 16 bits)")
        self._window = window
        self._sock = socket.create_connection((host, port), timeout=30)
        try:
            # CONNECT: MQTT 3.1.1, clean session, keepalive off (the run is bounded by its own timeouts).
            self._sock.sendall(
                _packet(0x10, _utf8("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + _utf8(client_id))
            )
            connack = self._recv_exact(4)
            if connack[0] != 0x20 or connack[3] != 0:
                raise ConnectionError(f"broker refused the load generator: CONNACK {connack.hex()}")
        except BaseException:
            self._sock.close()
            raise
        self._acked = 0
        self._closed = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read_acks, daemon=True)
        self._reader.start()
        self.messages = self.readings = 0

    def _recv_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return data

    def _read_acks(self) -> None:
        try:
            self._read_acks_until_closed()
        finally:
            with self._cond:
                self._closed = True  # wake run(): it raises instead of waiting for PUBACKs in vain
                self._cond.notify_all()

    def _wait_for_acks(self, at_least: int, deadline: float) -> None:
        with self._cond:
            while self._acked < at_least:
                if self._closed:
                    raise ConnectionError(f"connection lost after {self._acked} PUBACKs")
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"only {self._acked} messages PUBACKed")

    def _read_acks_until_closed(self) -> None:
        pending = b""
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            pending += chunk
            whole = len(pending) // 4 * 4  # PUBACK is always 4 bytes: 0x40 0x02 id id
            acks = sum(1 for i in range(0, whole, 4) if pending[i] == 0x40)
            pending = pending[whole:]
            with self._cond:
                self._acked += acks
                self._cond.notify_all()

    def run(self, messages: Sequence[tuple[str, bytes, int]], timeout: float = 300.0) -> None:
        """Publish all, return once every one is PUBACKed (TimeoutError after ``timeout``,
        ConnectionError when the broker goes away)."""
        deadline = time.monotonic() + timeout
        chunk: list[bytes] = []
        for index, (topic, payload, readings) in enumerate(messages):
            if index - self._acked >= self._window:
                if chunk:
                    self._sock.sendall(b"".join(chunk))
                    chunk = []
                self._wait_for_acks(index - self._window + 1, deadline)
            body = _utf8(topic) + struct.pack("!H", index % 65535 + 1) + payload
            chunk.append(_packet(0x32, body))  # PUBLISH, QoS 1
            self.messages += 1
            self.readings += readings
            if len(chunk) >= 64:
                self._sock.sendall(b"".join(chunk))
                chunk = []
        if chunk:
            self._sock.sendall(b"".join(chunk))
        self._wait_for_acks(len(messages), deadline)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendall(b"\xe0\x00")  # DISCONNECT
        self._sock.close()
        self._reader.join(5)
