"""Entry-point helper: logging, a stop event set by SIGTERM/SIGINT, and a clean return."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from common.logs import setup_logging


def run_until_signalled(service: str, target: Callable[[threading.Event], None]) -> None:
    setup_logging(service)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    target(stop)
