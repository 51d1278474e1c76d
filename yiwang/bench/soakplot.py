"""PNG curves of a soak run (memory, latency, queue depths) for docs/reliability.md.

matplotlib is a dev dependency (documentation plots): imported here only, when asked to plot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# (file, title, y label, [(sample key, legend)])
FIGURES: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    (
        "memory.png",
        "Resident memory",
        "RSS (MB)",
        [
            ("rss_broker_mb", "Mosquitto"),
            ("rss_ingest_mb", "ingest"),
            ("rss_alerts_mb", "alerts"),
            ("rss_influxd_mb", "influxd (holds the data)"),
        ],
    ),
    (
        "latency.png",
        "End-to-end latency of a probe reading",
        "latency (ms)",
        [
            ("store_latency_ms", "PUBLISH → visible in InfluxDB"),
            ("case_latency_ms", "PUBLISH → case evidence"),
        ],
    ),
    (
        "queues.png",
        "Queue depths",
        "messages",
        [
            ("ingest_queue_depth", "ingest: received, not yet handled"),
            ("broker_stored_messages", "Mosquitto: messages in store"),
            ("alerts_lag_messages", "alerts: published − evaluated (est.)"),
        ],
    ),
]


def plot(samples: Sequence[Mapping[str, Any]], directory: Path, *, rate: float, minutes: float) -> list[Path]:
    """Write the three PNGs into ``directory``; returns their paths."""
    if not samples:
        raise ValueError("no samples to plot")
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    minutes_axis = [s["t_s"] / 60 for s in samples]
    for name, title, ylabel, series in FIGURES:
        fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
        for key, label in series:
            points = [
                (m, s[key]) for m, s in zip(minutes_axis, samples, strict=True) if s.get(key) is not None
            ]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], label=label, linewidth=1.2)
        ax.set_title(f"{title} — soak at {rate:,.0f} readings/s for {minutes:g} min")
        ax.set_xlabel("time since soak start (min)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
        fig.tight_layout()
        path = directory / name
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
