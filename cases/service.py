"""The case-clock service (`yiwang cases`): SLA stages, supervision, auto-check and notifications.

Run one or more replicas against the same database: a lease makes exactly one of them work, and when
it dies another takes over after ``YIWANG_CASE_LEASE_TTL_S``. It needs the relational store only, no
broker.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from cases.autocheck import SignalsClear
from cases.clocks import CaseClocks
from cases.lease import Lease
from cases.notify import Outbox
from cases.policy import CasePolicy
from cases.schema import create_schema
from common.db import make_engine
from common.heartbeat import HeartbeatThread, instance_name
from common.settings import ServiceSettings

log = logging.getLogger(__name__)
LEASE = "case-clocks"


class CaseSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    # SLA stages are minutes long at the shortest: a quarter-minute round is precise enough.
    case_clock_interval_s: float = Field(default=15.0, gt=0)
    case_lease_ttl_s: float = Field(default=60.0, gt=0)
    autocheck_settle_minutes: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _lease_outlives_a_round(self) -> CaseSettings:
        # The holder renews once per round: a ttl shorter than the interval would lapse between rounds
        # and hand the clocks back and forth.
        if self.case_lease_ttl_s <= self.case_clock_interval_s:
            raise ValueError(
                f"YIWANG_CASE_LEASE_TTL_S ({self.case_lease_ttl_s:g}) must be longer than "
                f"YIWANG_CASE_CLOCK_INTERVAL_S ({self.case_clock_interval_s:g})"
            )
        return self


def run(settings: CaseSettings, stop: threading.Event, signals_clear: SignalsClear) -> None:
    """Run the clocks until ``stop``; ``signals_clear`` judges the auto-checks (the roof passes
    ``alerts.intake.alerts_clear``)."""
    db = make_engine(settings.database_url)
    create_schema(db)
    policy = CasePolicy.load(settings.config_dir, db)  # with the organisation's run-time changes
    outbox = Outbox.from_config(db, settings.config_dir, policy)
    lease = Lease(db, LEASE, instance_name(), timedelta(seconds=settings.case_lease_ttl_s))
    clocks = CaseClocks(
        db,
        policy,
        signals_clear,
        settle=timedelta(minutes=settings.autocheck_settle_minutes),
        outbox=outbox,
        lease=lease,
        interval_s=settings.case_clock_interval_s,
    )
    HeartbeatThread(make_engine(settings.database_url), "cases", clocks.counters.snapshot, stop).start()
    log.info(
        "case clocks every %gs, lease %r ttl %gs, notifications %s",
        settings.case_clock_interval_s,
        LEASE,
        settings.case_lease_ttl_s,
        "on" if outbox is not None else "off (no channel in notifications.yaml)",
    )
    try:
        clocks.run(stop)
    finally:
        if outbox is not None:
            outbox.close()
        db.dispose()
