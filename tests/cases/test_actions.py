"""CaseFlow: optimistic locking, reported cases merging into open ones, recurrence, the duty roster;
on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.intake import CaseBook
from alerts.rules import load_rules
from cases import actions
from cases.actions import CaseFlow, Report, VersionConflict
from cases.kpis import compute_kpis
from cases.models import Case, CaseState, Evidence
from tests.alerts.scenario import CONFIG, Scenario
from tests.cases.helpers import CST, EVE, HAPPY, POLICY, case, events, report, walk


def test_reported_case_merges_into_the_sensor_case_and_recurrence_reopens(db: Engine) -> None:
    scenario = Scenario(load_rules(CONFIG, POLICY.categories))
    book, flow = CaseBook(db, POLICY, timedelta(hours=1)), CaseFlow(db, POLICY)
    now = datetime.fromtimestamp(scenario.clock.now_ms / 1000, CST)
    [sensor_case] = book.apply(scenario.reading(0, "wl-01", level_cm=72), now=now)
    reported, merged_into = flow.report(
        Report("zhuganxiang", "g-north", "flooding", "地库进水了", "1号院"),
        actor="resident",
        now=now + timedelta(minutes=5),
    )
    assert merged_into == sensor_case
    assert case(db, reported).state == CaseState.MERGED and case(db, reported).merged_into == sensor_case
    assert ("report_merged", "NEW") in events(db, sensor_case)
    # Worked and closed; the water drains and comes back two days later: the same case reopens (返工).
    walk(flow, sensor_case, HAPPY, now + timedelta(minutes=5))
    book.apply(scenario.reading(5, "wl-01", level_cm=10), now=now + timedelta(hours=2))
    later = now + timedelta(days=2)
    assert book.apply(scenario.reading(172_800, "wl-01", level_cm=80), now=later) == [sensor_case]
    assert case(db, sensor_case).state == CaseState.REOPENED
    kpis = compute_kpis(db, POLICY, level="grid", scope="g-north", start=now - timedelta(hours=1), end=later)
    assert kpis.rework_rate == 1.0


def test_two_operators_at_once_one_wins_the_other_gets_a_conflict(db: Engine) -> None:
    flow = CaseFlow(db, POLICY)
    case_id = report(flow, EVE)
    version = case(db, case_id).version
    barrier, outcomes = threading.Barrier(2), []

    def act(action: str, params: dict[str, object]) -> None:
        barrier.wait()
        try:
            flow.act(case_id, action, actor=action, expected_version=version, params=params)
            outcomes.append(("ok", action))
        except VersionConflict:
            outcomes.append(("conflict", action))

    threads = [
        threading.Thread(target=act, args=a) for a in (("accept", {}), ("void", {"reason": "duplicate"}))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(kind for kind, _ in outcomes) == ["conflict", "ok"]
    winner = next(action for kind, action in outcomes if kind == "ok")
    assert [a for a, _ in events(db, case_id)] == ["reported", winner]
    with pytest.raises(VersionConflict):
        flow.act(case_id, "verify", actor="late", expected_version=version)


def test_assign_without_a_name_goes_to_the_duty_roster_and_its_backup(db: Engine) -> None:
    from cases.organisation import Roster
    from cases.rosters import set_roster

    flow = CaseFlow(db, POLICY)
    start = datetime(2026, 10, 12, 9, 0, tzinfo=CST)
    first = report(flow, start)
    walk(flow, first, [("accept", {}), ("verify", {}), ("assign", {})], start)
    assert case(db, first).assignee == "li.na"  # g-north's primary
    set_roster(
        db,
        POLICY.organisation,
        Roster(unit="g-north", primary="li.na", backup="zhao.lei", away=["li.na"]),
        author="chen.jie",
    )
    second = report(flow, start, category="gas_leak")
    walk(flow, second, [("accept", {}), ("verify", {}), ("assign", {})], start)
    assert case(db, second).assignee == "zhao.lei"  # the primary is away: the backup
    with pytest.raises(ValueError, match="not among people: nobody"):
        set_roster(
            db, POLICY.organisation, Roster(unit="g-north", primary="nobody", backup="zhao.lei"), author="x"
        )


def test_a_note_leaves_the_join_window_alone_and_a_join_extends_it(db: Engine) -> None:
    flow = CaseFlow(db, POLICY)
    case_id = report(flow, EVE)
    later = EVE + timedelta(minutes=30)
    with Session(db) as session, session.begin():
        noted = session.get(Case, case_id)
        assert noted is not None
        actions.record(
            session, noted, action="alert_resolved", note="cleared", actor="system:alerts", now=later
        )
        assert noted.updated_at.astimezone(CST) == EVE
        actions.join(session, noted, action="alert_joined", note="fired", actor="system:alerts", now=later)
        actions.add_evidence(
            session,
            noted,
            alert_fingerprint="door|zhuganxiang|d-01",
            rule_id="door",
            rule_version=1,
            device="d-01",
            building=None,
            location="3号楼",
            observed={"open": True},
            observed_at=later,
        )
    assert case(db, case_id).updated_at.astimezone(CST) == later
    assert events(db, case_id) == [("reported", "NEW"), ("alert_resolved", "NEW"), ("alert_joined", "NEW")]
    with Session(db) as session:
        assert session.scalars(select(Evidence.readings)).all() == [None]  # an event rule keeps no window
