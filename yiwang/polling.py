"""Waiting for something a separate process does: ask again until it answers or time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def first_answer(check: Callable[[], T | None], timeout_s: float, interval_s: float) -> T | None:
    """``check()``'s first truthy answer, asked every ``interval_s`` for ``timeout_s``; None when time
    runs out (the caller says what it was waiting for)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval_s)
    return None
