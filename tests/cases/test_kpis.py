"""KPIs over worked cases as the seed reports them; on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from cases.actions import CaseFlow
from cases.kpis import compute_kpis
from tests.cases.helpers import CST, POLICY, report


def test_kpis_as_the_seed_reports_them(db: Engine) -> None:
    flow = CaseFlow(db, POLICY)
    start = datetime(2026, 10, 12, 9, 0, tzinfo=CST)
    outcomes = ["satisfied", "satisfied", "satisfied", "unsatisfied"]
    for i, outcome in enumerate(outcomes):
        case_id = report(
            flow, start + timedelta(minutes=i), grid=["g-north", "g-middle", "g-south", "g-north"][i]
        )
        flow.act(case_id, "accept", actor="op", now=start + timedelta(minutes=10 + i))
        flow.act(case_id, "verify", actor="op", now=start + timedelta(minutes=11 + i))
        flow.act(
            case_id, "assign", actor="op", params={"assignee": "li.na"}, now=start + timedelta(minutes=12 + i)
        )
        flow.act(case_id, "sign", actor="op", now=start + timedelta(minutes=13 + i))
        if i < 2:
            flow.act(
                case_id,
                "call_up",
                actor="op",
                params={"department": "enforcement", "approved_by": "head"},
                now=start + timedelta(minutes=20 + i),
            )
            flow.act(case_id, "call_resolve", actor="dept", now=start + timedelta(minutes=50 + i))
        else:
            flow.act(case_id, "feedback", actor="op", now=start + timedelta(minutes=50 + i))
        flow.act(case_id, "check", actor="op", now=start + timedelta(minutes=60 + i))
        done = start + timedelta(days=3 if i == 1 else 0, minutes=70 + i)  # case 2 finishes late
        flow.act(case_id, "pass", actor="op", now=done)
        flow.act(case_id, "visit", actor="op", params={"outcome": outcome}, now=done + timedelta(hours=1))
    voided = report(flow, start + timedelta(minutes=9), grid="g-middle")
    flow.act(voided, "void", actor="op", params={"reason": "duplicate"}, now=start + timedelta(minutes=15))
    kpis = compute_kpis(
        db, POLICY, level="community", scope="zhuganxiang", start=start, end=start + timedelta(days=1)
    )
    assert kpis.calls == 2
    assert (kpis.all_cases.cases, kpis.all_cases.completed, kpis.all_cases.completion_rate) == (4, 4, 1.0)
    assert kpis.all_cases.on_time_rate == 0.75 and kpis.all_cases.satisfaction_rate == 0.75
    assert (kpis.called_cases.cases, kpis.called_cases.on_time_rate, kpis.called_cases.satisfaction_rate) == (
        2,
        0.5,
        1.0,
    )
    assert kpis.rework_rate == 0.25 and kpis.void_rate == 0.2
    grid = compute_kpis(db, POLICY, level="grid", scope="g-north", start=start, end=start + timedelta(days=1))
    assert grid.all_cases.cases == 2
