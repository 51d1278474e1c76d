"""A real HTTP receiver on loopback for notification tests: records what arrives, can fail first."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.fail_next = 0


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.server.fail_next > 0:
            self.server.fail_next -= 1
            self.send_response(503)
        else:
            self.server.received.append((self.headers["Idempotency-Key"], body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass
