"""The simulated pilot community as an edge service: one simulator, spool and publisher per gateway.

``run_simulated_community(EdgeSettings(), stop_event)`` is what ``yiwang edge`` runs. It ticks about
once a second; each tick batches everything a gateway's devices report into one telemetry message
(and one event message when a camera has something), so message count stays flat as devices grow.
"""

from __future__ import annotations

import logging
import threading
import time

from contract.catalog import load_catalog
from contract.messages import DeviceEntry
from edge.metrics import EdgeMetrics
from edge.publisher import GatewayPublisher, MqttOptions
from edge.settings import EdgeSettings
from edge.simulated_devices import GatewaySimulator, simulators_for
from edge.spool import Spool, SpoolFullError

log = logging.getLogger(__name__)


class _Gateway:
    """One simulated gateway: what it measures, where it spools, how it publishes."""

    def __init__(
        self,
        settings: EdgeSettings,
        simulator: GatewaySimulator,
        devices: list[DeviceEntry],
        options: MqttOptions,
    ) -> None:
        self.simulator = simulator
        path = settings.spool_dir / settings.community / f"{simulator.gateway}.sqlite3"
        self.spool = Spool(path, max_bytes=settings.spool_max_bytes, max_age_s=settings.spool_max_age_s)
        self.publisher = GatewayPublisher(settings.community, simulator.gateway, self.spool, devices, options)
        self.refused = 0

    def tick(self, now_ms: int) -> None:
        readings, events = self.simulator.step(now_ms)
        try:
            # Events first: when the spool is nearly full, an alarm should not wait behind telemetry.
            if events:
                self.publisher.publish_events(events)
            if readings:
                self.publisher.publish_readings(readings)
        except SpoolFullError as err:
            self.refused += 1
            # Once per 100 refusals: a long outage must not flood the log with the same line.
            if self.refused % 100 == 1:
                log.warning("gateway %s: %s (%d refusals so far)", self.simulator.gateway, err, self.refused)
        self.publisher.pump()


def run_simulated_community(settings: EdgeSettings, stop_event: threading.Event) -> None:
    """Simulate and publish the configured community until ``stop_event`` is set."""
    catalog = load_catalog(settings.config_dir)
    simulators = simulators_for(
        catalog, settings.community, seed=settings.seed, anomaly_period_s=settings.anomaly_period_s
    )
    community = catalog.communities[settings.community]
    entries = {
        gw.id: [DeviceEntry(device=d.id, type=d.type) for d in gw.devices] for gw in community.gateways
    }
    # Each gateway logs in as itself: the broker keys a session by the account, so a shared login
    # would have the gateways disconnect each other. Read before any spool opens: a bad file fails fast.
    options = settings.simulated_gateway_options(simulators)
    gateways: list[_Gateway] = []
    metrics = EdgeMetrics()
    try:
        for gateway_id, simulator in simulators.items():
            gw = _Gateway(settings, simulator, entries[gateway_id], options[gateway_id])
            gateways.append(gw)
            metrics.add(gw.publisher)
        if settings.metrics_port is not None:
            metrics.serve("127.0.0.1", settings.metrics_port)
        for gw in gateways:
            gw.publisher.start()
        log.info(
            "edge: simulating community %s with %d gateway(s), broker %s:%s, seed %d",
            settings.community,
            len(gateways),
            settings.mqtt_host,
            settings.mqtt_port,
            settings.seed,
        )
        _loop(settings, gateways, stop_event)
        log.info("edge: stopping community %s", settings.community)
    finally:
        metrics.close()
        for gw in gateways:
            try:
                # Stopped on request: maintenance. Stopped by a failure: an outage people should see.
                gw.publisher.stop(planned=stop_event.is_set())
            except Exception:
                log.exception("gateway %s: clean stop failed", gw.simulator.gateway)
            finally:
                gw.spool.close()


def _loop(settings: EdgeSettings, gateways: list[_Gateway], stop_event: threading.Event) -> None:
    # Monotonic time paces the loop; wall-clock time stamps the readings.
    next_tick = time.monotonic()
    next_state = next_tick + settings.state_interval_s
    while not stop_event.is_set():
        now_ms = time.time_ns() // 1_000_000
        for gw in gateways:
            try:
                gw.tick(now_ms)
            except Exception:
                # One gateway's bug must not stop the others (or the process) from reporting.
                log.exception("gateway %s: tick failed", gw.simulator.gateway)
        if time.monotonic() >= next_state:
            next_state += settings.state_interval_s
            for gw in gateways:
                gw.publisher.publish_state()
        next_tick += settings.tick_s
        # After a stall (suspended host) skip the missed ticks rather than bursting through them.
        next_tick = max(next_tick, time.monotonic())
        stop_event.wait(max(0.0, next_tick - time.monotonic()))
