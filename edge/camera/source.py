"""Frame capture of one camera in its own thread, handing frames over through a one-slot mailbox.

Capture and analysis are decoupled as in Frigate: a stream that stalls blocks only its own capture
thread (reads are bounded by FFmpeg's read timeout), never the analysis of other cameras. The mailbox
holds the newest frame only; a frame replaced before analysis took it is counted as dropped, so a slow
analysis sheds load instead of queueing without bound. A failed open or read reconnects with
exponential backoff (reset by the first good frame).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import cv2

from edge.camera.analyzer import Frame
from edge.camera.config import CameraConfig
from edge.camera.health import CameraHealth

log = logging.getLogger(__name__)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def open_capture(source: str | int, read_timeout_s: float) -> cv2.VideoCapture:
    """Open a V4L2 index, a network stream (with bounded open/read times) or a file."""
    if isinstance(source, int):
        return cv2.VideoCapture(source, cv2.CAP_V4L2)
    timeout_ms = int(read_timeout_s * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
    return cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)


class FrameSource:
    def __init__(
        self,
        config: CameraConfig,
        health: CameraHealth,
        *,
        clock: Callable[[], float] = time.monotonic,
        opener: Callable[[str | int, float], cv2.VideoCapture] = open_capture,
    ) -> None:
        self.config = config
        self.camera = config.id
        self.health = health
        self._clock = clock
        self._opener = opener
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # A file is replayed at its own frame rate, as if it were a live camera.
        self._is_file = isinstance(config.source, str) and "://" not in config.source

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.camera}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning(
                    "camera %s: capture thread still blocked in a read after %.0fs", self.camera, timeout_s
                )

    def get(self, timeout_s: float) -> Frame | None:
        """The newest frame not yet taken, waiting at most ``timeout_s``; None if none came."""
        with self._cond:
            if self._slot is None:
                self._cond.wait(timeout_s)
            frame, self._slot = self._slot, None
            return frame

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self._slot is not None:
                self.health.drop()
            self._slot = frame
            self._cond.notify()

    def _run(self) -> None:
        delay = self.config.reconnect_min_s
        while not self._stop.is_set():
            capture = self._opener(self.config.source, self.config.read_timeout_s)
            try:
                if not capture.isOpened():
                    log.warning(
                        "camera %s: cannot open %s; retrying in %.1fs", self.camera, self._where, delay
                    )
                else:
                    self.health.reconnected()
                    self.health.connected = True
                    log.info("camera %s: stream %s open", self.camera, self._where)
                    if self._read_until_failure(capture):
                        delay = self.config.reconnect_min_s
                    if not self._stop.is_set():
                        log.warning(
                            "camera %s: stream %s ended; reopening in %.1fs", self.camera, self._where, delay
                        )
            finally:
                capture.release()
                self.health.connected = False
            self._stop.wait(delay)
            delay = min(self.config.reconnect_max_s, delay * 2)

    @property
    def _where(self) -> str:
        # Never log stream credentials (rtsp://user:password@host/...).
        source = self.config.source
        if isinstance(source, str) and "://" in source:
            scheme, rest = source.split("://", 1)
            netloc, slash, path = rest.partition("/")
            if "@" in netloc:  # a password may itself contain "@": the host follows the last one
                return f"{scheme}://***@{netloc.rpartition('@')[2]}{slash}{path}"
        return str(source)

    def _read_until_failure(self, capture: cv2.VideoCapture) -> bool:
        """Read frames until the stream fails or we stop; True if at least one frame came."""
        got_any = False
        min_gap = 1.0 / self.config.max_fps
        file_gap = 0.0
        if self._is_file:
            fps = capture.get(cv2.CAP_PROP_FPS)
            file_gap = 1.0 / fps if 0 < fps < 1000 else min_gap
        last_handed = -1e9
        while not self._stop.is_set():
            ok, image = capture.read()
            if not ok or image is None:
                return got_any
            got_any = True
            now = self._clock()
            self.health.captured(now)
            if now - last_handed >= min_gap * 0.95:
                last_handed = now
                self._put(Frame(image, now, _wall_ms()))
            if file_gap:
                self._stop.wait(file_gap)
        return got_any
