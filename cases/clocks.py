"""The case clocks in their own loop: SLA stages (80 % warnings, 督办), auto-check, notifications.

They live apart from the alert stream on purpose: alert workers partition by community and restart
with the stream, while a stage falls due whatever the sensors say, and every case must be watched by
exactly one scanner. One round does, in this order so that a round's own events are notified by the
same round: the SLA scan, the auto-check, the outbox sweep, then delivery.

With a :class:`~cases.lease.Lease`, only its holder works; the lease is renewed before every step of
a round, and a replica that cannot renew (another holds it, or the database is unreachable) does
nothing until it holds it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from cases.autocheck import AutoCheck, SignalsClear
from cases.lease import Lease
from cases.notify import Outbox
from cases.policy import CasePolicy
from cases.sla import SlaMonitor

log = logging.getLogger(__name__)


@dataclass
class ClockCounters:
    rounds: int = 0
    sla_events: int = 0  # 80 % warnings and supervision orders written
    auto_checked: int = 0
    notifications_enqueued: int = 0
    notifications_sent: int = 0
    failures: int = 0
    holding: bool = False

    def snapshot(self) -> dict[str, Any]:
        return dict(vars(self))


class CaseClocks:
    def __init__(
        self,
        db: Engine,
        policy: CasePolicy,
        signals_clear: SignalsClear,
        *,
        settle: timedelta = timedelta(minutes=30),
        outbox: Outbox | None = None,
        lease: Lease | None = None,
        interval_s: float = 15.0,
    ) -> None:
        """``lease``: None when this is the only scanner (a test, a single-process tool)."""
        self._sla = SlaMonitor(db, policy, communities=None)
        self._autocheck = AutoCheck(db, policy, signals_clear, settle, communities=None)
        self._outbox, self._lease, self._interval_s = outbox, lease, interval_s
        self.counters = ClockCounters(holding=lease is None)
        self._said_standby = False

    def round(self, now: datetime | None = None) -> bool:
        """One round of every clock; False when this replica does not hold the lease.

        The lease is renewed before each step, so a slow step (a webhook that times out) neither
        lets it lapse unnoticed nor lets the next step run without it. A step that fails is logged
        and tried again next round, and does not keep the steps after it from running.
        """
        outbox = self._outbox
        steps: list[tuple[str, Callable[[], None]]] = [
            ("SLA scan", lambda: self._count("sla_events", self._sla.scan(now))),
            ("auto-check", lambda: self._count("auto_checked", len(self._autocheck.scan(now)))),
        ]
        if outbox is not None:
            steps += [
                ("outbox sweep", lambda: self._count("notifications_enqueued", outbox.sweep(now))),
                ("notification delivery", lambda: self._count("notifications_sent", outbox.deliver(now))),
            ]
        for what, work in steps:
            if not self.holds():
                return False
            self._step(what, work)
        self.counters.rounds += 1
        return True

    def _count(self, counter: str, n: int) -> None:
        setattr(self.counters, counter, getattr(self.counters, counter) + n)

    def _step(self, what: str, work: Callable[[], None]) -> None:
        try:
            work()
        except SQLAlchemyError as err:
            self.counters.failures += 1
            log.warning("%s failed (%s); the next round retries", what, err)
        except Exception:
            # Not expected: logged in full, yet one broken step must not stop the clocks of every case.
            self.counters.failures += 1
            log.exception("%s failed; the next round retries", what)

    def holds(self) -> bool:
        """Renew (or take) the lease; True when this replica is to run the next step."""
        if self._lease is None:
            return True
        was = self.counters.holding
        try:
            holding = self._lease.acquire()
        except SQLAlchemyError as err:
            holding = False
            if was:
                log.warning(
                    "case clocks: lost the lease %r: cannot renew it (%s); paused until it is ours again",
                    self._lease.name,
                    err,
                )
                self.counters.holding = False
            return False
        if holding and not was:
            log.info(
                "case clocks: took the lease %r as %s (ttl %.0fs): running the clocks",
                self._lease.name,
                self._lease.holder,
                self._lease.ttl.total_seconds(),
            )
        elif was and not holding:
            log.warning("case clocks: lost the lease %r to %s; standing by", self._lease.name, self._other())
        elif not holding and not self._said_standby:
            log.info("case clocks: the lease %r is held by %s; standing by", self._lease.name, self._other())
        self._said_standby = not holding
        self.counters.holding = holding
        return holding

    def _other(self) -> str:
        assert self._lease is not None
        try:
            state = self._lease.current()
        except SQLAlchemyError:
            return "another replica"
        return f"{state.holder} (until {state.expires_at:%H:%M:%S})" if state else "nobody"

    def run(self, stop: threading.Event) -> None:
        """A round every ``interval_s`` while this replica holds the lease, until ``stop``."""
        try:
            while not stop.is_set():
                self.round()
                stop.wait(self._interval_s)
        finally:
            self._release()

    def _release(self) -> None:
        if self._lease is None or not self.counters.holding:
            return
        self.counters.holding = False
        try:
            self._lease.release()
            log.info("case clocks: released the lease %r", self._lease.name)
        except SQLAlchemyError as err:
            log.warning("could not release the lease %r (%s); it expires by itself", self._lease.name, err)
