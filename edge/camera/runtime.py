"""The camera runtime of one gateway: per camera a capture thread and an analysis thread; events go out
through the gateway's spool and publisher; health goes to ``/metrics`` and to the ``state`` snapshot.

A camera's failure (a stalled stream, an exception in its analysis) stays with that camera: each has
its own threads, and an analysis error is logged and the loop goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from contract.messages import DeviceEntry, Event
from edge.camera.analyzer import CameraAnalyzer
from edge.camera.config import CameraConfig, GatewayCameras
from edge.camera.health import CameraHealth, CameraMetrics
from edge.camera.http import GatewayHttp
from edge.camera.snapshot import SnapshotStore
from edge.camera.source import FrameSource
from edge.publisher import GatewayPublisher, MqttOptions
from edge.spool import Spool, SpoolFullError

log = logging.getLogger(__name__)

EventSink = Callable[[Sequence[Event]], object]
CAMERA_TYPE = "camera.events@1"


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class CameraWorker:
    """One camera: capture thread → one-slot mailbox → analysis thread → event sink."""

    def __init__(
        self,
        config: CameraConfig,
        sink: EventSink,
        *,
        metrics: CameraMetrics | None = None,
        snapshots: SnapshotStore | None = None,
    ) -> None:
        self.config = config
        self.camera = config.id
        self.health = CameraHealth(config.id, metrics)
        self.analyzer = CameraAnalyzer(config, snapshot=snapshots)
        self.source = FrameSource(config, self.health)
        self._sink = sink
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._limited = 0
        self._started = time.monotonic()

    def start(self) -> None:
        self._started = time.monotonic()
        self.source.start()
        self._thread = threading.Thread(target=self._run, name=f"analyse-{self.camera}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
        self.source.stop()
        self._deliver(self.analyzer.close(time.monotonic(), _wall_ms()))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:
                log.exception("camera %s: analysis failed; continuing with the next frame", self.camera)

    def _step(self) -> None:
        frame = self.source.get(timeout_s=0.2)
        if frame is None:
            last = self.health.last_frame_t
            # A camera that never delivered is lost only once stream_timeout_s passed since the start.
            since = self._started if last is None else last
            events = self.analyzer.idle(time.monotonic(), _wall_ms(), since)
        else:
            events = self.analyzer.process(frame)
            self.health.analysed()
        limited = self.analyzer.rate_limited
        self.health.rate_limited(limited - self._limited)
        self._limited = limited
        self._deliver(events)

    def _deliver(self, events: list[Event]) -> None:
        if not events:
            return
        try:
            self._sink(events)
        except SpoolFullError as err:
            log.error("camera %s: %d event(s) refused: %s", self.camera, len(events), err)


class CameraRuntime:
    """All cameras of a gateway with their HTTP server, publishing through the gateway's publisher.

    Standalone (``yiwang edge camera``) it owns a spool and publisher. A gateway that also runs the
    device agent must pass the agent's ``publisher`` instead: one gateway id needs one MQTT client id
    and one seq counter, or the two processes would disconnect each other and reuse seqs.
    """

    def __init__(
        self, config: GatewayCameras, mqtt: MqttOptions, *, publisher: GatewayPublisher | None = None
    ) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        self.metrics = CameraMetrics(self.registry)
        self._owns_publisher = publisher is None
        self.spool: Spool | None = None
        if publisher is None:
            self.spool = Spool(config.spool)
            publisher = GatewayPublisher(config.community, config.gateway, self.spool, self.devices(), mqtt)
        self.publisher = publisher
        self.snapshots = {c.id: SnapshotStore(c.snapshots) for c in config.cameras if c.snapshots.enabled}
        self.workers = [
            CameraWorker(
                c, self.publisher.publish_events, metrics=self.metrics, snapshots=self.snapshots.get(c.id)
            )
            for c in config.cameras
        ]
        token = config.http.snapshot_token
        self.http = GatewayHttp(
            config.http.host,
            config.http.port,
            registry=self.registry,
            health=self.health,
            snapshots=self.snapshots,
            token=token.get_secret_value() if token is not None else None,
        )

    def devices(self) -> list[DeviceEntry]:
        """The cameras as devices of the gateway (for the retained ``devices`` message)."""
        return [DeviceEntry(device=c.id, type=CAMERA_TYPE) for c in self.config.cameras]

    def health(self) -> dict[str, Any]:
        """Per-camera health for the gateway ``state`` message (see the lead's contract note)."""
        return {w.camera: w.health.snapshot() for w in self.workers}

    def start(self) -> None:
        self.http.start()
        if self._owns_publisher:
            self.publisher.start()
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        for worker in self.workers:
            try:
                worker.stop()
            except Exception:
                log.exception("camera %s: clean stop failed", worker.camera)
        if self._owns_publisher:
            self.publisher.stop()
        self.http.stop()
        if self.spool is not None:
            self.spool.close()

    def purge_snapshots(self) -> None:
        for camera, store in self.snapshots.items():
            removed = store.purge()
            if removed:
                log.info("camera %s: purged %d snapshot(s) past retention", camera, removed)


def run_cameras(config: GatewayCameras, mqtt: MqttOptions, stop: threading.Event) -> None:
    """What ``yiwang edge camera`` runs: analyse every camera until ``stop`` is set."""
    runtime = CameraRuntime(config, mqtt)
    runtime.publisher.set_camera_health(runtime.health)
    runtime.start()
    log.info(
        "edge camera: gateway %s/%s with %d camera(s), http port %d",
        config.community,
        config.gateway,
        len(runtime.workers),
        runtime.http.port,
    )
    try:
        while not stop.wait(60.0):
            runtime.purge_snapshots()
            runtime.publisher.publish_state()
            runtime.publisher.pump()
    finally:
        runtime.stop()
