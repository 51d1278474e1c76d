"""The engine's checkpoint as JSON, encoded a piece at a time beside the stream.

One ``json.dumps`` of the whole state (≈ 10 MB at 1,000 devices with rolling windows) is a single C
call that holds the GIL for a quarter of a second: the stream's thread, and with it every alert due in
that moment, waits. Encoded one series at a time, the writer thread gives the GIL up between pieces,
and a short sleep every few hundred series hands the CPU to the stream first.
"""

from __future__ import annotations

import json
import time
from typing import Any

from common.db import EncodedJSON

PIECES_PER_PAUSE = 200
PAUSE_S = 0.001


def encode_gently(snapshot: dict[str, Any]) -> EncodedJSON:
    """``json.dumps(snapshot)``, the same text to ``json.loads``, made a top-level entry at a time
    and a mapping's item at a time."""
    parts = [f"{json.dumps(key)}:{_encode_value(value)}" for key, value in snapshot.items()]
    return EncodedJSON("{" + ",".join(parts) + "}")


def _encode_value(value: Any) -> str:
    if not isinstance(value, dict):
        return json.dumps(value)
    items: list[str] = []
    for n, (key, item) in enumerate(value.items(), start=1):
        items.append(f"{json.dumps(str(key))}:{json.dumps(item)}")
        if n % PIECES_PER_PAUSE == 0:
            time.sleep(PAUSE_S)
    return "{" + ",".join(items) + "}"
