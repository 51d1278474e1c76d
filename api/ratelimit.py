"""Login throttling: after 5 failed attempts for a username or from a client within 5 minutes, further
attempts are refused (429) until the window passes — a brute force costs hours, a typo nothing."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class LoginThrottle:
    def __init__(self, max_failures: int = 5, window_s: float = 300.0) -> None:
        self._max, self._window = max_failures, window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        entries = self._failures[key]
        while entries and now - entries[0] > self._window:
            entries.popleft()
        return entries

    def retry_after(self, *keys: str) -> float:
        """Seconds until another attempt is allowed (0 when it is allowed now)."""
        now = time.monotonic()
        with self._lock:
            waits = [
                self._window - (now - entries[0])
                for key in keys
                if len(entries := self._recent(key, now)) >= self._max
            ]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, username_key: str) -> None:
        with self._lock:
            self._failures.pop(username_key, None)
