"""Writes that need not hold the alert stream back, run one at a time on a thread of their own.

The stream's thread evaluates readings and commits the transitions they cause before their messages
are acknowledged; anything else it wrote itself — megabytes of checkpoint, a thousand devices' last
reports — delayed every alert due meanwhile. These writes are bookkeeping, not part of the
at-least-once hand-off, so they run here: at most one at a time per writer (the next is started only
once the last has finished, so nothing queues up), and a failure is the job's to handle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class BackgroundWriter:
    """At most one job at a time on a daemon thread named ``name``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, job: Callable[..., None], *args: Any) -> bool:
        """Run ``job(*args)`` beside the stream; False (nothing started) while the last one runs."""
        if self.busy:
            return False
        self._thread = threading.Thread(target=job, args=args, name=self._name, daemon=True)
        self._thread.start()
        return True

    def join(self) -> None:
        """Wait for the running job, if any (a clean stop)."""
        if self._thread is not None:
            self._thread.join()
