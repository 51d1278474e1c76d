"""Is the freshly started agent healthy? Judged from outside, by its own ``/metrics``.

Healthy means, within the deadline: connected to the broker (``yiwang_edge_connected`` 1), readings
flowing through its spool (``yiwang_edge_last_seq`` advanced while we watched: a seq is claimed in the
spool's database for readings appended to it, so sources are polling and the spool is writable) and the
broker acknowledged something this run (``yiwang_edge_published_messages`` above 0). The probe asks the
process itself rather than reading a mark it wrote, so a wedged agent cannot look healthy by an old
file; it needs the gateway file's ``metrics.port`` (on by default, 127.0.0.1:9108). The restarter
returns only once the old process has exited, so every answer comes from the new one.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

MAX_METRICS_BYTES = 1024 * 1024
DEFAULT_DEADLINE_S = 120.0


@dataclass(frozen=True, slots=True)
class Sample:
    connected: bool
    last_seq: int
    published: int


@dataclass(frozen=True, slots=True)
class Verdict:
    healthy: bool
    reason: str


def read_sample(url: str, timeout_s: float = 2.0) -> Sample | str:
    """The agent's health figures, or why none could be read."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - local metrics URL
            data: bytes = response.read(MAX_METRICS_BYTES + 1)
    except (urllib.error.URLError, OSError) as err:
        return f"no answer at {url} ({getattr(err, 'reason', err)}): the agent is not running"
    if len(data) > MAX_METRICS_BYTES:
        return f"{url} answered more than {MAX_METRICS_BYTES} bytes: not the agent's metrics"
    values: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(data.decode("utf-8", "replace")):
            for sample in family.samples:
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    except ValueError as err:
        return f"{url}: unreadable metrics ({err})"
    if "yiwang_edge_connected" not in values:
        return f"{url}: no yiwang_edge_connected metric: not an edge agent"
    return Sample(
        connected=values["yiwang_edge_connected"] >= 1,
        last_seq=int(values.get("yiwang_edge_last_seq", 0)),
        published=int(values.get("yiwang_edge_published_messages_total", 0)),
    )


def wait_healthy(
    url: str,
    deadline_s: float = DEFAULT_DEADLINE_S,
    interval_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """Watch the agent until it is healthy or ``deadline_s`` passed; the verdict names what was missing."""
    end = clock() + deadline_s
    first_seq: int | None = None
    problem = "not watched yet"
    while True:
        sample = read_sample(url)
        if isinstance(sample, str):
            problem = sample
        else:
            if first_seq is None:
                first_seq = sample.last_seq
            if not sample.connected:
                problem = "not connected to the broker"
            elif sample.last_seq <= first_seq:
                problem = f"no reading spooled while watched (seq stayed at {sample.last_seq})"
            elif sample.published < 1:
                problem = "nothing acknowledged by the broker yet"
            else:
                return Verdict(True, f"connected, seq {first_seq} → {sample.last_seq}, spool writable")
        if clock() >= end:
            return Verdict(False, f"not healthy within {deadline_s:g} s: {problem}")
        sleep(interval_s)
