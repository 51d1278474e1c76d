"""Deadlines on a frozen clock: working time and holidays, extension, suspension, urgency; on SQLite
and on a real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from cases.actions import CaseFlow
from cases.kpis import compute_kpis
from cases.workflow import InvalidAction
from tests.cases.helpers import CST, EVE, HAPPY, POLICY, case, report, walk


def test_working_time_deadline_skips_the_holiday(db: Engine) -> None:
    flow = CaseFlow(db, POLICY)
    opened = case(db, report(flow, EVE))
    # 8 working hours: none left on the 30th, 7.5 h on Thursday 8 October, 0.5 h on Friday the 9th.
    assert opened.deadline == datetime(2026, 10, 9, 9, 0, tzinfo=CST)
    assert opened.stage == "accept" and opened.stage_due == datetime(2026, 10, 8, 9, 0, tzinfo=CST)
    assert opened.owner_town == "yuehe"
    # Urgent categories run on a continuous clock: flooding is due 4 h later, holiday or not.
    flood = case(db, report(flow, EVE, category="flooding"))
    assert flood.deadline == EVE + timedelta(hours=4)


def test_extension_counts_as_on_time_and_suspension_pauses_the_clock(db: Engine) -> None:
    flow = CaseFlow(db, POLICY)
    start = datetime(2026, 10, 12, 9, 0, tzinfo=CST)  # a Monday
    extended, suspended = report(flow, start), report(flow, start, grid="g-south")
    for case_id in (extended, suspended):
        walk(flow, case_id, HAPPY[:4], start)
    base = case(db, extended).deadline
    flow.act(
        extended, "extend", actor="zhang.san", params={"hours": 8, "approved_by": "town-head"}, now=start
    )
    assert case(db, extended).deadline == POLICY.calendar.add(base, timedelta(hours=8))
    # Suspended Monday 10:00, resumed Wednesday 10:00: the remaining working time is kept, not spent.
    remaining = POLICY.calendar.between(start + timedelta(hours=1), case(db, suspended).deadline)
    flow.act(
        suspended,
        "suspend",
        actor="zhang.san",
        params={"reason": "等待物业", "approved_by": "town-head"},
        now=start + timedelta(hours=1),
    )
    flow.act(suspended, "resume", actor="zhang.san", now=start + timedelta(days=2, hours=1))
    assert case(db, suspended).deadline == POLICY.calendar.add(start + timedelta(days=2, hours=1), remaining)
    # Completed after the original deadline, before the extended one: on time.
    late = base + timedelta(hours=1)
    walk(flow, extended, HAPPY[4:], late - timedelta(minutes=30))
    kpis = compute_kpis(
        db,
        POLICY,
        level="district",
        scope="rencheng",
        start=start - timedelta(days=1),
        end=start + timedelta(days=1),
    )
    assert (kpis.all_cases.completed, kpis.all_cases.on_time_rate, kpis.extension_rate) == (1, 1.0, 0.5)


def test_urgency_set_when_verifying_shortens_the_deadline(db: Engine) -> None:
    flow = CaseFlow(db, POLICY)
    start = datetime(2026, 10, 12, 9, 0, tzinfo=CST)  # Monday 09:00; office hours 08:30-12:00, 13:30-17:30
    case_id = report(flow, start)
    assert case(db, case_id).deadline == datetime(2026, 10, 13, 9, 30, tzinfo=CST)  # 8 working hours
    flow.act(case_id, "accept", actor="op", now=start)
    flow.act(case_id, "verify", actor="op", params={"urgency": "urgent"}, now=start)
    assert case(db, case_id).deadline == datetime(2026, 10, 12, 14, 30, tzinfo=CST)  # 4 working hours
    other = report(flow, start, grid="g-south")
    flow.act(other, "accept", actor="op", now=start)
    with pytest.raises(InvalidAction, match="urgency"):
        flow.act(other, "verify", actor="op", params={"urgency": "whenever"}, now=start)
