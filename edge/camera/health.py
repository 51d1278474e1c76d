"""Per-camera health: fps, dropped frames, last-frame age, for the gateway ``state`` and ``/metrics``.

Counters are updated by the capture and analysis threads of one camera; a lock keeps them consistent.
The Prometheus metrics read the same numbers, registered in a registry the runtime owns (several
runtimes in one process, as in tests, must not collide in the global registry).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

_FPS_WINDOW_S = 5.0


class CameraMetrics:
    """The Prometheus families of all cameras of one gateway (label ``camera``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.frames = Counter("yiwang_camera_frames", "Frames analysed.", ["camera"], registry=registry)
        self.dropped = Counter(
            "yiwang_camera_dropped_frames",
            "Frames replaced before analysis took them.",
            ["camera"],
            registry=registry,
        )
        self.reconnects = Counter(
            "yiwang_camera_reconnects",
            "Times the stream was (re)opened after a failure.",
            ["camera"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "yiwang_camera_events_rate_limited",
            "Events dropped by the rate limit.",
            ["camera"],
            registry=registry,
        )
        self.fps = Gauge(
            "yiwang_camera_fps", "Frames analysed per second (5 s window).", ["camera"], registry=registry
        )
        self.age = Gauge(
            "yiwang_camera_last_frame_age_seconds",
            "Seconds since the last captured frame.",
            ["camera"],
            registry=registry,
        )
        self.connected = Gauge(
            "yiwang_camera_connected", "1 while the stream is open.", ["camera"], registry=registry
        )


class CameraHealth:
    def __init__(
        self,
        camera: str,
        metrics: CameraMetrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.camera = camera
        self._clock = clock
        self._lock = threading.Lock()
        self._times: deque[float] = deque()
        self.frames = 0
        self.dropped = 0
        self.reconnects = 0
        self.connected = False
        self.last_frame_t: float | None = None
        self._metrics = metrics
        if metrics is not None:
            # Touch every labelled child now, so /metrics shows zeros instead of missing series.
            for family in (metrics.frames, metrics.dropped, metrics.reconnects, metrics.rate_limited):
                family.labels(camera)
            metrics.fps.labels(camera).set_function(self.fps)
            metrics.age.labels(camera).set_function(self._age_or_minus_one)
            metrics.connected.labels(camera).set_function(lambda: 1.0 if self.connected else 0.0)

    def captured(self, t: float) -> None:
        with self._lock:
            self.last_frame_t = t

    def analysed(self) -> None:
        now = self._clock()
        with self._lock:
            self.frames += 1
            self._times.append(now)
            while self._times and now - self._times[0] > _FPS_WINDOW_S:
                self._times.popleft()
        if self._metrics is not None:
            self._metrics.frames.labels(self.camera).inc()

    def drop(self) -> None:
        with self._lock:
            self.dropped += 1
        if self._metrics is not None:
            self._metrics.dropped.labels(self.camera).inc()

    def reconnected(self) -> None:
        with self._lock:
            self.reconnects += 1
        if self._metrics is not None:
            self._metrics.reconnects.labels(self.camera).inc()

    def rate_limited(self, count: int) -> None:
        if self._metrics is not None and count > 0:
            self._metrics.rate_limited.labels(self.camera).inc(count)

    def fps(self) -> float:
        now = self._clock()
        with self._lock:
            recent = [t for t in self._times if now - t <= _FPS_WINDOW_S]
        return len(recent) / _FPS_WINDOW_S

    def last_frame_age(self) -> float | None:
        with self._lock:
            last = self.last_frame_t
        return None if last is None else max(0.0, self._clock() - last)

    def _age_or_minus_one(self) -> float:
        # Prometheus has no "null": -1 means no frame yet since the start.
        age = self.last_frame_age()
        return -1.0 if age is None else age

    def snapshot(self) -> dict[str, float | int | bool | None]:
        """The camera's entry in the gateway ``state`` (flat numbers, contract-friendly)."""
        age = self.last_frame_age()
        with self._lock:
            frames, dropped, reconnects, connected = (
                self.frames,
                self.dropped,
                self.reconnects,
                self.connected,
            )
        return {
            "fps": round(self.fps(), 2),
            "frames": frames,
            "dropped": dropped,
            "reconnects": reconnects,
            "connected": connected,
            "last_frame_age_s": None if age is None else round(age, 2),
        }
