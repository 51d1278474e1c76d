"""An RTSP-like MJPEG-over-HTTP camera served on loopback, which a test can cut, stall and restore.

``multipart/x-mixed-replace`` is what many IP cameras serve and what FFmpeg (inside OpenCV) reads as
a live stream. ``cut()`` closes the listening socket and every open stream (a camera losing power or
its link); ``restore()`` listens again on the same port; ``stall()`` keeps connections open but sends
nothing (a hung encoder). Every thread and socket is released by ``close()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2

from edge.camera.masks import Image
from yiwang.servers import HOST, free_port

BOUNDARY = b"yiwangframe"


class _Server(ThreadingHTTPServer):
    # Handler threads are joined on server_close(): no thread outlives a cut.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: MjpegServer) -> None:
        self.owner = owner
        self.closing = threading.Event()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        owner = self.server.owner
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace;boundary={BOUNDARY.decode()}")
        self.end_headers()
        try:
            while not self.server.closing.is_set():
                if owner.stalled.is_set():
                    self.server.closing.wait(0.05)
                    continue
                ok, jpeg = cv2.imencode(".jpg", owner.frame())
                assert ok
                data = jpeg.tobytes()
                self.wfile.write(
                    b"--"
                    + BOUNDARY
                    + b"\r\nContent-Type: image/jpeg\r\n"
                    + f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                    + b"\r\n"
                )
                owner.sent += 1
                self.server.closing.wait(1.0 / owner.fps)
        except OSError:
            pass  # the client went away: a reconnecting camera source does exactly that

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MjpegServer:
    def __init__(self, render: Callable[[float], Image], fps: float = 20.0) -> None:
        self.render = render
        self.fps = fps
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}/stream.mjpg"
        self.stalled = threading.Event()
        self.sent = 0
        self._t0 = time.monotonic()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.restore()

    def frame(self) -> Image:
        return self.render(time.monotonic() - self._t0)

    def restore(self) -> None:
        assert self._server is None, "already serving"
        self._server = _Server((HOST, self.port), self)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def cut(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.closing.set()
        server.shutdown()
        server.server_close()  # joins the handler threads (block_on_close)
        thread.join(5)

    def stall(self) -> None:
        self.stalled.set()

    def unstall(self) -> None:
        self.stalled.clear()

    def close(self) -> None:
        self.cut()


__all__ = ["MjpegServer"]
