"""The case clocks in their own loop, and the lease that lets exactly one replica run them.

Lease and round on SQLite and on a real PostgreSQL; then two `yiwang cases` processes on one
PostgreSQL database, the lease holder SIGKILLed while stages keep falling due.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cases.actions import CaseFlow, Report
from cases.clocks import CaseClocks
from cases.lease import Lease
from cases.models import Case, CaseEvent, SupervisionOrder
from cases.notify import Outbox
from cases.policy import CasePolicy
from common.db import make_engine
from tests.platform import CONFIG_DIR, Service, wait_for
from yiwang.schema import create_all

POLICY = CasePolicy.load(CONFIG_DIR)
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)
ACCEPT = timedelta(minutes=POLICY.categories["flooding"].accept_minutes)  # a continuous clock


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def never_clear(session: Session, case_id: int, now: datetime, settle: timedelta) -> int | None:
    return None  # no sensor case reaches its check in these tests


def report_flooding(flow: CaseFlow, now: datetime, grid: str = "g-north") -> int:
    case_id, merged = flow.report(
        Report("zhuganxiang", grid, "flooding", "积水没过路沿", "3号楼"), actor="resident", now=now
    )
    assert merged is None
    return case_id


def orders_per_case(db: Engine) -> Counter[int]:
    with Session(db) as session:
        return Counter(session.scalars(select(SupervisionOrder.case_id)).all())


# --- the lease ---------------------------------------------------------------------------------------


def test_the_first_acquisition_creates_the_lease_and_its_holder_renews_it(db: Engine) -> None:
    clock = FakeClock()
    lease = Lease(db, "clocks", "a", TTL, clock)
    assert lease.current() is None

    assert lease.acquire() and lease.held
    state = lease.current()
    assert state is not None and (state.holder, state.expires_at) == ("a", T0 + TTL)

    clock.now = T0 + TTL / 2
    assert lease.acquire()
    renewed = lease.current()
    assert renewed is not None and (renewed.holder, renewed.expires_at) == ("a", T0 + TTL / 2 + TTL)


def test_a_second_holder_is_refused_while_the_lease_is_valid(db: Engine) -> None:
    clock = FakeClock()
    a, b = Lease(db, "clocks", "a", TTL, clock), Lease(db, "clocks", "b", TTL, clock)
    assert a.acquire()

    assert not b.acquire() and not b.held
    clock.now = T0 + TTL - timedelta(milliseconds=1)
    assert not b.acquire()
    state = b.current()
    assert state is not None and state.holder == "a"
    assert Lease(db, "other-job", "b", TTL, clock).acquire()  # leases of other names are independent


def test_the_lease_of_a_holder_that_stopped_renewing_is_taken_over_after_its_ttl(db: Engine) -> None:
    clock = FakeClock()
    a, b = Lease(db, "clocks", "a", TTL, clock), Lease(db, "clocks", "b", TTL, clock)
    assert a.acquire()

    clock.now = T0 + TTL
    assert b.acquire()
    assert not a.acquire(), "the old holder must not win its lease back while the new one is valid"
    state = a.current()
    assert state is not None and (state.holder, state.expires_at) == ("b", T0 + 2 * TTL)


def test_a_released_lease_is_free_at_once(db: Engine) -> None:
    clock = FakeClock()
    a, b = Lease(db, "clocks", "a", TTL, clock), Lease(db, "clocks", "b", TTL, clock)
    assert a.acquire()
    a.release()
    assert not a.held
    assert b.acquire()


def test_on_the_databases_own_clock_the_lease_expires_after_its_ttl(db: Engine) -> None:
    ttl = timedelta(seconds=1)
    a, b = Lease(db, "clocks", "a", ttl), Lease(db, "clocks", "b", ttl)
    assert a.acquire() and not b.acquire()
    time.sleep(1.2)
    assert not a.held  # by a's own clock too: it must stop working before b starts
    assert b.acquire() and not a.acquire()


def test_of_replicas_racing_for_a_new_lease_exactly_one_wins(db: Engine) -> None:
    replicas = [Lease(db, "clocks", f"r{i}", TTL, FakeClock()) for i in range(6)]
    start, won = threading.Barrier(len(replicas)), []

    def race(lease: Lease) -> None:
        start.wait()
        if lease.acquire():
            won.append(lease.holder)

    threads = [threading.Thread(target=race, args=(lease,)) for lease in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(won) == 1
    state = replicas[0].current()
    assert state is not None and state.holder == won[0]


# --- one round ---------------------------------------------------------------------------------------


def test_a_round_warns_and_supervises_each_stage_once(db: Engine) -> None:
    flow = CaseFlow(db, POLICY, join_window=timedelta(0))
    early = report_flooding(flow, T0)
    late = report_flooding(flow, T0 + ACCEPT / 2)
    clocks = CaseClocks(db, POLICY, never_clear)

    assert clocks.round(T0 + ACCEPT)  # early's stage is due, late's at 50 %
    assert clocks.round(T0 + ACCEPT + ACCEPT * 0.4)  # late at 90 %: warned
    assert clocks.round(T0 + 2 * ACCEPT)  # late due
    assert clocks.round(T0 + 3 * ACCEPT)  # nothing left to do

    assert orders_per_case(db) == {early: 1, late: 1}
    with Session(db) as session:
        warned = session.scalars(select(CaseEvent.case_id).where(CaseEvent.action == "sla_warning")).all()
    assert warned == [late]
    assert (clocks.counters.rounds, clocks.counters.sla_events, clocks.counters.failures) == (4, 3, 0)


class BrokenSweep(Outbox):
    """Its sweep fails like a database that went away; its delivery records that it still ran."""

    def __init__(self, db: Engine) -> None:
        super().__init__(db, [])
        self.delivered = 0

    def sweep(self, now: datetime | None = None, batch: int = 500) -> int:
        raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    def deliver(self, now: datetime | None = None, batch: int = 50) -> int:
        self.delivered += 1
        return 0


def test_a_failing_step_is_logged_and_the_other_steps_still_run(
    db: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    case_id = report_flooding(CaseFlow(db, POLICY), T0)
    outbox = BrokenSweep(db)
    clocks = CaseClocks(db, POLICY, never_clear, outbox=outbox)

    with caplog.at_level(logging.WARNING, logger="cases.clocks"):
        assert clocks.round(T0 + ACCEPT) and clocks.round(T0 + ACCEPT)
    outbox.close()

    assert orders_per_case(db) == {case_id: 1}
    assert outbox.delivered == 2 and clocks.counters.failures == 2
    assert caplog.text.count("outbox sweep failed") == 2


def test_only_the_lease_holder_runs_a_round_and_a_holder_that_cannot_renew_stops(
    db: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    case_id = report_flooding(CaseFlow(db, POLICY), T0)
    clock = FakeClock(T0 + ACCEPT)
    mine, theirs = Lease(db, "case-clocks", "me", TTL, clock), Lease(db, "case-clocks", "them", TTL, clock)
    clocks = CaseClocks(db, POLICY, never_clear, lease=mine)
    assert theirs.acquire()

    with caplog.at_level(logging.INFO, logger="cases.clocks"):
        assert not clocks.round(T0 + ACCEPT)
        assert orders_per_case(db) == {}
        assert "held by them" in caplog.text

        clock.now += TTL  # theirs expired: ours now
        assert clocks.round(T0 + ACCEPT)
        assert orders_per_case(db) == {case_id: 1} and clocks.counters.holding
        assert "took the lease 'case-clocks' as me" in caplog.text

        def unreachable() -> bool:
            raise OperationalError("UPDATE leases", {}, Exception("could not connect to server"))

        monkeypatch.setattr(mine, "acquire", unreachable)
        assert not clocks.round(T0 + ACCEPT) and not clocks.counters.holding
        assert "lost the lease 'case-clocks': cannot renew it" in caplog.text


# --- two replicas of the service on one PostgreSQL -------------------------------------------------


def pid_of(holder: str) -> int:
    match = re.fullmatch(r".+:(\d+)", holder)
    assert match, holder
    return int(match[1])


def lease_holder(db: Engine) -> int | None:
    state = Lease(db, "case-clocks", "test", TTL).current()
    return pid_of(state.holder) if state and state.expires_at > datetime.now(UTC) else None


@pytest.mark.integration
def test_two_replicas_supervise_every_due_stage_once_across_a_killed_holder(
    postgres_url: str, tmp_path: Path
) -> None:
    create_all(postgres_url)
    db = make_engine(postgres_url)
    env = {
        "YIWANG_DATABASE_URL": postgres_url,
        "YIWANG_CONFIG_DIR": str(CONFIG_DIR),
        "YIWANG_CASE_CLOCK_INTERVAL_S": "0.5",
        "YIWANG_CASE_LEASE_TTL_S": "3",
        "YIWANG_LOG_LEVEL": "INFO",
    }

    def start(name: str) -> Service:
        return Service(["cases"], env, tmp_path, tmp_path / f"{name}.log").start()

    first = start("first")
    second: Service | None = None
    try:
        wait_for(lambda: "took the lease" in first.log(), 30, f"the first replica's lease:\n{first.log()}")
        second = start("second")
        wait_for(
            lambda: "standing by" in second.log(), 30, f"the second replica standing by:\n{second.log()}"
        )
        assert first.proc is not None and second.proc is not None
        assert lease_holder(db) == first.proc.pid

        # Stages falling due one every 0.2 s over the next 8 s; the holder dies after about 3 s.
        flow = CaseFlow(db, POLICY, join_window=timedelta(0))
        start_at = datetime.now(UTC)
        due = [start_at + timedelta(seconds=1 + 0.2 * i) for i in range(40)]
        cases = [report_flooding(flow, at - ACCEPT) for at in due]
        time.sleep(max(0.0, (start_at + timedelta(seconds=4) - datetime.now(UTC)).total_seconds()))
        killed_at = datetime.now(UTC)
        first.proc.kill()
        first.proc.wait(10)

        wait_for(
            lambda: lease_holder(db) == second.proc.pid if second.proc else None,
            20,
            f"the survivor to take over:\n{second.log()}",
        )
        wait_for(lambda: len(orders_per_case(db)) == len(cases), 30, f"every case's order:\n{second.log()}")
        time.sleep(1.5)  # a few more rounds: any duplicate would show now

        assert orders_per_case(db) == dict.fromkeys(cases, 1)
        with Session(db) as session:
            issued = session.scalars(select(SupervisionOrder.issued_at)).all()
            open_clocks = session.scalar(
                select(func.count()).select_from(Case).where(Case.stage_due.is_not(None))
            )
        assert open_clocks == 0
        assert any(at < killed_at for at in issued), "the first holder supervised nothing"
        assert any(at > killed_at for at in issued), "the survivor supervised nothing"
        assert "took the lease" in second.log()
    finally:
        first.stop()
        survivor = second.stop() if second is not None else None
        db.dispose()
    assert second is not None and survivor == 0, second.log()
    assert "released the lease" in second.log()  # a clean stop hands the lease on without waiting
