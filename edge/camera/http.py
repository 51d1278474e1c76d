"""The gateway's small local HTTP server: ``/metrics`` (Prometheus), ``/health`` and ``/snapshots``.

Snapshots never leave the gateway on their own: an authorised operator fetches one by the reference an
event carries, with ``Authorization: Bearer <snapshot_token>``. Without a configured token the
endpoint answers 403 to everyone. 401 without credentials, 403 for a wrong token, 404 unknown file.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from edge.camera.snapshot import SnapshotStore

log = logging.getLogger(__name__)


class GatewayHttp:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        registry: CollectorRegistry,
        health: Callable[[], dict[str, Any]],
        snapshots: dict[str, SnapshotStore],
        token: str | None,
    ) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http %s: " + format, self.address_string(), *args)

        self._registry = registry
        self._health = health
        self._snapshots = snapshots
        self._token = token
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="gateway-http", daemon=True)
        self._thread.start()
        log.info("gateway http: /metrics, /health, /snapshots on port %d", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(request, 200, generate_latest(self._registry), CONTENT_TYPE_LATEST)
        elif path == "/health":
            self._reply(request, 200, json.dumps(self._health()).encode(), "application/json")
        elif path.startswith("/snapshots/"):
            self._snapshot(request, path.removeprefix("/snapshots/"))
        else:
            self._reply(request, 404, b"not found\n", "text/plain")

    def _snapshot(self, request: BaseHTTPRequestHandler, reference: str) -> None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            self._reply(
                request, 401, b"bearer token required\n", "text/plain", {"WWW-Authenticate": "Bearer"}
            )
            return
        given = header.removeprefix("Bearer ").strip().encode()
        if self._token is None or not hmac.compare_digest(given, self._token.encode()):
            log.warning("gateway http: refused snapshot %s to %s", reference, request.address_string())
            self._reply(request, 403, b"forbidden\n", "text/plain")
            return
        camera = reference.partition("/")[0]
        store = self._snapshots.get(camera)
        path = store.path_of(reference) if store is not None else None
        if path is None:
            self._reply(request, 404, b"no such snapshot\n", "text/plain")
            return
        log.info("camera %s: snapshot %s fetched by %s", camera, reference, request.address_string())
        self._reply(request, 200, path.read_bytes(), "image/jpeg")

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)
