"""Capture from a real MJPEG-over-HTTP stream on loopback: cut and restored, stalled, outpaced."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pytest

from contract.messages import Event
from edge.camera.config import CameraConfig
from edge.camera.health import CameraHealth
from edge.camera.masks import Image
from edge.camera.runtime import CameraWorker
from edge.camera.source import FrameSource
from edge.camera.synthetic import background
from tests.edge.camera.mjpeg import MjpegServer
from yiwang.servers import free_port

pytestmark = pytest.mark.integration


def still_scene(size: tuple[int, int] = (160, 120)) -> Callable[[float], Image]:
    scene = background(width=size[0], height=size[1])
    rng = np.random.default_rng(3)

    def render(_t: float) -> Image:
        noise = rng.normal(0, 2, scene.shape)
        return np.clip(scene + noise, 0, 255).astype(np.uint8)

    return render


def fast_config(url: str, camera: str = "cam-01", **extra: object) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": camera,
            "source": url,
            "max_fps": 50,
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 0.5,
            "read_timeout_s": 1.0,
            "stream_timeout_s": 1.0,
            "tamper": {"warmup_s": 0.3},
        }
        | extra
    )


class Collector:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, events: Sequence[Event]) -> None:
        with self._lock:
            self.events.extend(events)

    def summary(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(e.kind, e.phase) for e in self.events]


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        time.sleep(0.05)


@pytest.fixture
def stream() -> Iterator[MjpegServer]:
    server = MjpegServer(still_scene(), fps=20)
    yield server
    server.close()


def test_stream_cut_and_restored_gives_one_lost_incident_and_reconnects(stream: MjpegServer) -> None:
    sink = Collector()
    worker = CameraWorker(fast_config(stream.url), sink)
    worker.start()
    try:
        wait_for(lambda: worker.health.frames >= 20, what="frames flowing")
        assert worker.health.reconnects == 1
        stream.cut()
        wait_for(lambda: ("camera.stream_lost", "start") in sink.summary(), what="stream_lost start")
        assert worker.health.snapshot()["connected"] is False
        age = worker.health.last_frame_age()
        assert age is not None and age >= 1.0
        stream.restore()
        wait_for(lambda: ("camera.stream_lost", "end") in sink.summary(), what="stream_lost end")
        frames = worker.health.frames
        wait_for(lambda: worker.health.frames >= frames + 10, what="frames after restore")
    finally:
        worker.stop()
    # Exactly one incident: no motion or tamper from the reconnect, no second lost event.
    assert sink.summary() == [("camera.stream_lost", "start"), ("camera.stream_lost", "end")]
    assert sink.events[0].id == sink.events[1].id
    assert worker.health.reconnects >= 2


def test_a_stalled_stream_does_not_block_another_camera(stream: MjpegServer) -> None:
    other = MjpegServer(still_scene(), fps=20)
    stalled_sink, live_sink = Collector(), Collector()
    stalled = CameraWorker(fast_config(stream.url, "cam-01"), stalled_sink)
    live = CameraWorker(fast_config(other.url, "cam-02"), live_sink)
    stalled.start()
    live.start()
    try:
        wait_for(lambda: stalled.health.frames >= 10 and live.health.frames >= 10, what="both flowing")
        stream.stall()
        wait_for(lambda: ("camera.stream_lost", "start") in stalled_sink.summary(), what="stall noticed")
        # While cam-01 hangs in a read, cam-02 keeps being analysed at its own pace.
        before = live.health.frames
        time.sleep(1.0)
        assert live.health.frames - before >= 10
        live_age = live.health.last_frame_age()
        assert live_age is not None and live_age < 0.5
        stream.unstall()
        wait_for(lambda: ("camera.stream_lost", "end") in stalled_sink.summary(), what="stall over")
    finally:
        stalled.stop()
        live.stop()
        other.close()
    assert stalled_sink.summary() == [("camera.stream_lost", "start"), ("camera.stream_lost", "end")]
    assert live_sink.summary() == []


def test_slow_analysis_drops_frames_instead_of_queueing(stream: MjpegServer) -> None:
    health = CameraHealth("cam-01")
    source = FrameSource(fast_config(stream.url), health)
    source.start()
    try:
        taken = []
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            frame = source.get(timeout_s=1.0)
            if frame is not None:
                taken.append(frame.t)
                # Fresh, not a backlog: a queue would hand out frames 0.15 s older at every take, past
                # this bound by the fourth; a busy machine only delays one frame.
                assert time.monotonic() - frame.t < 0.5
            time.sleep(0.2)  # an analysis five times slower than the stream
    finally:
        source.stop()
    # ~20 frames/s arrive, ~5/s are taken; the rest are dropped, never queued.
    assert 3 <= len(taken) <= 11
    assert health.dropped >= 10
    # What analysis gets is the newest frame, not a stale backlog.
    assert all(b > a for a, b in itertools.pairwise(taken))


def test_unreachable_stream_retries_with_backoff_and_never_logs_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="edge.camera.source")
    url = f"http://admin:s3cr@t@127.0.0.1:{free_port()}/stream.mjpg"  # nobody listens there
    health = CameraHealth("cam-09")
    source = FrameSource(fast_config(url, "cam-09", reconnect_min_s=0.1, reconnect_max_s=0.4), health)
    source.start()
    try:
        wait_for(lambda: len(caplog.records) >= 4, what="four failed opens")
    finally:
        source.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert all("cam-09" in m and "s3cr" not in m and "admin" not in m for m in messages)
    delays = [m.rsplit("retrying in ", 1)[1] for m in messages[:4]]
    assert delays == ["0.1s", "0.2s", "0.4s", "0.4s"]  # doubling, capped at reconnect_max_s
    assert health.reconnects == 0 and health.frames == 0


def test_a_camera_dead_at_start_is_lost_after_the_timeout_not_before() -> None:
    sink = Collector()
    url = f"http://127.0.0.1:{free_port()}/stream.mjpg"
    worker = CameraWorker(fast_config(url, "cam-08", stream_timeout_s=1.0), sink)
    started = time.monotonic()
    worker.start()
    try:
        wait_for(lambda: sink.summary() != [], what="stream_lost start")
        waited = time.monotonic() - started
    finally:
        worker.stop()
    assert waited >= 1.0
    # Shutdown ends the open incident: no start is left without its end.
    assert sink.summary() == [("camera.stream_lost", "start"), ("camera.stream_lost", "end")]
