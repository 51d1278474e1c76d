"""SLA clocks: the 80 % warning and supervision orders (督办) on a frozen clock; on SQLite and on a
real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cases.actions import CaseFlow
from cases.models import SupervisionOrder
from cases.sla import SlaMonitor
from tests.cases.helpers import CST, POLICY, case, events, report, walk


def test_breach_issues_a_supervision_order_and_a_second_breach_escalates(db: Engine) -> None:
    flow, monitor = CaseFlow(db, POLICY), SlaMonitor(db, POLICY)
    opened = datetime(2026, 10, 12, 9, 0, tzinfo=CST)
    case_id = report(flow, opened)  # accept within 30 working minutes
    assert monitor.scan(opened + timedelta(minutes=23)) == 0
    assert monitor.scan(opened + timedelta(minutes=25)) == 1  # 80 % used: warning
    assert monitor.scan(opened + timedelta(minutes=31)) == 1  # breach: 督办 level 1
    assert monitor.scan(opened + timedelta(minutes=40)) == 0  # one order per stage
    walk(
        flow,
        case_id,
        [("accept", {}), ("verify", {}), ("assign", {"assignee": "li.na"})],
        opened + timedelta(minutes=40),
    )
    assigned = case(db, case_id)
    assert assigned.stage == "sign" and assigned.stage_due is not None
    monitor.scan(assigned.stage_due + timedelta(minutes=1))  # not signed for in time: escalates
    with Session(db) as session:
        orders = [
            (o.stage, o.level, o.addressed_to, o.unit)
            for o in session.scalars(select(SupervisionOrder).order_by(SupervisionOrder.id))
        ]
    assert orders == [("accept", 1, "yuehe", "yuehe"), ("sign", 2, "chen.jie", "yuehe")]  # the town's leader
    assert [a for a, _ in events(db, case_id)].count("supervise") == 2
