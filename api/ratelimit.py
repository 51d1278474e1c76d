"""Login throttling: per account and per client, a few failures are free, then each further attempt waits
twice as long as the one before (up to a cap) — a brute force costs days, a typo nothing.

The client is the peer's address, or the address a trusted reverse proxy put in ``X-Forwarded-For``; a
forged header from anyone else is ignored, and one busy proxy does not lock out everyone behind it.
Memory is bounded: the least recently failed keys are forgotten first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.requests import Request

MAX_TRACKED_KEYS = 20_000


@dataclass(slots=True)
class _Failures:
    count: int
    last: float


class LoginThrottle:
    def __init__(
        self,
        free_failures: int = 5,
        backoff_s: float = 30.0,
        backoff_max_s: float = 3600.0,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self._free, self._base, self._cap, self._max_keys = free_failures, backoff_s, backoff_max_s, max_keys
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def _delay(self, count: int) -> float:
        if count < self._free:
            return 0.0
        return min(self._base * 2.0 ** min(count - self._free, 64), self._cap)

    def _current(self, key: str, now: float) -> _Failures | None:
        """A key's failures; forgotten once a whole longest back-off has passed without one."""
        entry = self._failures.get(key)
        if entry is not None and now - entry.last > self._cap + self._delay(entry.count):
            del self._failures[key]
            return None
        return entry

    def retry_after(self, *keys: str) -> float:
        """Seconds until another attempt is allowed (0 when it is allowed now)."""
        now = time.monotonic()
        with self._lock:
            waits = [
                entry.last + self._delay(entry.count) - now
                for key in keys
                if (entry := self._current(key, now)) is not None
            ]
        return max([0.0, *waits])

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                entry = self._current(key, now)
                self._failures[key] = _Failures((entry.count if entry else 0) + 1, now)
                self._failures.move_to_end(key)
            while len(self._failures) > self._max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, account_key: str) -> None:
        """The account's failures are forgiven; the client's stay (one good account must not reset them)."""
        with self._lock:
            self._failures.pop(account_key, None)

    def tracked(self) -> int:
        with self._lock:
            return len(self._failures)


def client_address(request: Request, trusted: list[IPv4Network | IPv6Network]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the nearest address in
    ``X-Forwarded-For`` that is not itself a trusted proxy (the ones further left are the client's say)."""
    peer = request.client.host if request.client else ""
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    address = peer
    while _is_trusted(address, trusted) and hops:
        address = hops.pop()
    return address


def _is_trusted(address: str, trusted: list[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


class StreamSlots:
    """How many live-update streams each user holds at once: a few tabs, not a connection flood.

    A slot is also freed by its deadline, so a stream whose ending went unnoticed cannot hold it for ever.
    """

    def __init__(self, per_user: int = 4, lifetime_s: float = 120.0) -> None:
        self._per_user, self._lifetime = per_user, lifetime_s
        self._held: dict[str, dict[int, float]] = {}
        self._next = 0
        self._lock = threading.Lock()

    def acquire(self, user: str) -> int | None:
        """A slot's number, or None when the user already holds ``per_user`` live ones."""
        now = time.monotonic()
        with self._lock:
            held = {n: end for n, end in self._held.get(user, {}).items() if end > now}
            if len(held) >= self._per_user:
                self._held[user] = held
                return None
            self._next += 1
            held[self._next] = now + self._lifetime
            self._held[user] = held
            return self._next

    def release(self, user: str, slot: int) -> None:
        with self._lock:
            held = self._held.get(user, {})
            held.pop(slot, None)
            if not held:
                self._held.pop(user, None)


class WindowQuota:
    """At most ``limit`` uses per key in any ``window_s`` (a sliding window): residents' reports per client
    and per channel key. Memory is bounded: a key holds at most ``limit`` times, and the least recently
    used keys are forgotten first beyond ``max_keys``."""

    def __init__(self, limit: int, window_s: float = 3600.0, max_keys: int = MAX_TRACKED_KEYS) -> None:
        self._limit, self._window, self._max_keys = limit, window_s, max_keys
        self._uses: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Count one use and return 0, or return the seconds until one is free (nothing counted)."""
        now = time.monotonic()
        with self._lock:
            uses = [t for t in self._uses.get(key, []) if now - t < self._window]
            if len(uses) >= self._limit:
                self._uses[key] = uses
                return uses[0] + self._window - now
            uses.append(now)
            self._uses[key] = uses
            self._uses.move_to_end(key)
            while len(self._uses) > self._max_keys:
                self._uses.popitem(last=False)
            return 0.0
