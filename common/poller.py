"""A daemon thread that calls ``refresh`` every ``poll_s`` seconds until stopped: how a service follows
a version row in the database (the registry, the definitions) without a restart."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Poller:
    def __init__(self, refresh: Callable[[], object], poll_s: float, *, name: str) -> None:
        self._refresh, self._poll_s, self._name = refresh, poll_s, name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self._refresh()
            except Exception:  # a listener's bug must not end the polling
                log.exception("%s: a listener failed", self._name)
