"""Servers of their own for the tests that take them down or flood them (the fault and hostile-gateway
tests): a Mosquitto configured as broker/ ships it for ingest, and an influxd, both under the test's
directory. The session-wide ``mosquitto`` and ``influxdb`` (tests/conftest.py) serve everything else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from yiwang.servers import InfluxServer, MosquittoServer, start_influxd, start_mosquitto

BROKER_EXTRA = "max_inflight_messages 20000\nautosave_interval 1\n"
"""Mosquitto as broker/ ships it for ingest: a large in-flight window, sessions saved every second."""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A Mosquitto of this test, which it may restart or kill."""
    server = start_mosquitto(base_dir=tmp_path, extra_config=BROKER_EXTRA)
    yield server
    server.stop()


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[InfluxServer]:
    """An influxd of this test, which it may halt and start again."""
    server = start_influxd(base_dir=tmp_path)
    yield server
    server.stop()
