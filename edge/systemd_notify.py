"""sd_notify for ``Type=notify`` with ``WatchdogSec`` (edge/systemd/yiwang-edge.service), no dependency.

A no-op outside systemd (no ``NOTIFY_SOCKET``). The watchdog is petted from the agent's main loop, so
a wedged loop (not just a dead process) gets the agent restarted.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


def notify(state: str) -> bool:
    """Send one sd_notify datagram (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``); False outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as err:
        log.warning("edge: sd_notify %s to %s failed: %s", state, address, err)
        return False
    return True


class Watchdog:
    """Pets systemd's watchdog at a third of ``WATCHDOG_USEC`` (no-op when it is not set)."""

    def __init__(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC", "")
        self.interval_s = int(usec) / 3e6 if usec.isdigit() and int(usec) > 0 else None
        self._next = 0.0

    def pet(self) -> None:
        if self.interval_s is None:
            return
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval_s
            notify("WATCHDOG=1")
