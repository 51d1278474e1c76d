"""The platform's server side running as processes — the API, ingest and alerts on real Mosquitto,
influxd and PostgreSQL — for tests that change it while it runs; and Chromium for the browser tests
(their helpers are in tests/e2e/browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from api.accounts import ensure_demo_operator
from common.db import make_engine
from tests.e2e.browser import launch_chromium
from tests.platform import CONFIG_DIR, Service, wait_for
from yiwang.servers import InfluxDatabase, MosquittoServer, free_port, unique_name


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, one per test module."""
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@dataclass
class LiveStack:
    api: httpx.Client
    """Signed in with a district operator's token."""
    token: str
    base_url: str
    env: dict[str, str]
    """The services' environment: what a `yiwang` command on the server needs too."""
    services: list[Service]

    def logs(self) -> str:
        return "\n".join(s.log()[-2000:] for s in self.services)


@pytest.fixture
def live_stack(
    tmp_path: Path, mosquitto: MosquittoServer, influx_database: InfluxDatabase, postgres_url: str
) -> Iterator[LiveStack]:
    http_port = free_port()
    env = {
        "YIWANG_MQTT_PORT": str(mosquitto.port),
        "YIWANG_HTTP_PORT": str(http_port),
        "YIWANG_DATABASE_URL": postgres_url,
        "YIWANG_SERIES_URL": influx_database.store_url,
        "YIWANG_CONFIG_DIR": str(CONFIG_DIR),
        "YIWANG_INGEST_SPOOL_DIR": str(tmp_path / "spool"),
        "YIWANG_INGEST_METRICS_PORT": "0",
        "YIWANG_INGEST_CLIENT_ID": unique_name("ingest"),
        "YIWANG_ALERTS_CLIENT_ID": unique_name("alerts"),
        "YIWANG_REGISTRY_POLL_S": "1",
    }
    init = Service(["db", "init"], env, tmp_path, tmp_path / "db.log").start()
    assert init.proc is not None and init.proc.wait(60) == 0, init.log()
    api = Service(["api"], env, tmp_path, tmp_path / "api.log").start()
    services = [api]
    base = f"http://127.0.0.1:{http_port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 60, f"the API; log:\n{api.log()}")  # it seeds the registry before it listens
        services += [
            Service([name], env, tmp_path, tmp_path / f"{name}.log").start() for name in ("ingest", "alerts")
        ]
        db = make_engine(postgres_url)
        token = ensure_demo_operator(db, tmp_path / "credentials.json")["token"]
        db.dispose()
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        yield LiveStack(client, token, base, env, services)
        client.close()
    finally:
        for service in services[::-1]:
            service.stop()
