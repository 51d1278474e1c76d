"""The health verdict read from a real /metrics endpoint: healthy only when connected, readings going
through the spool and something acknowledged; otherwise the reason names what was missing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edge.upgrade.health import wait_healthy


class Metrics:
    def __init__(self) -> None:
        self.connected = 1
        self.seq = 10
        self.published = 0
        self.step = 0  # seq added per scrape


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Metrics]]:
    metrics = Metrics()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            metrics.seq += metrics.step
            body = (
                f'yiwang_edge_connected{{community="c",gateway="g"}} {metrics.connected}\n'
                f'yiwang_edge_last_seq{{community="c",gateway="g"}} {metrics.seq}\n'
                "# TYPE yiwang_edge_published_messages counter\n"
                f'yiwang_edge_published_messages_total{{community="c",gateway="g"}} {metrics.published}\n'
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/metrics", metrics
    server.shutdown()
    server.server_close()


def test_a_connected_agent_whose_seq_moves_and_publishes_is_healthy(endpoint: tuple[str, Metrics]) -> None:
    url, metrics = endpoint
    metrics.step, metrics.published = 1, 3
    verdict = wait_healthy(url, deadline_s=3, interval_s=0.05)
    assert verdict.healthy, verdict.reason


def test_a_disconnected_agent_is_not(endpoint: tuple[str, Metrics]) -> None:
    url, metrics = endpoint
    metrics.connected, metrics.step, metrics.published = 0, 1, 3
    verdict = wait_healthy(url, deadline_s=0.3, interval_s=0.05)
    assert not verdict.healthy
    assert verdict.reason == "not healthy within 0.3 s: not connected to the broker"


def test_an_agent_that_spools_nothing_is_not(endpoint: tuple[str, Metrics]) -> None:
    url, metrics = endpoint
    metrics.published = 3
    verdict = wait_healthy(url, deadline_s=0.3, interval_s=0.05)
    assert verdict.reason == "not healthy within 0.3 s: no reading spooled while watched (seq stayed at 10)"


def test_an_agent_nothing_of_which_was_acknowledged_is_not(endpoint: tuple[str, Metrics]) -> None:
    url, metrics = endpoint
    metrics.step = 1
    verdict = wait_healthy(url, deadline_s=0.3, interval_s=0.05)
    assert verdict.reason == "not healthy within 0.3 s: nothing acknowledged by the broker yet"


def test_no_agent_at_all_is_not() -> None:
    verdict = wait_healthy("http://127.0.0.1:1/metrics", deadline_s=0.2, interval_s=0.05)
    assert not verdict.healthy
    assert "the agent is not running" in verdict.reason
