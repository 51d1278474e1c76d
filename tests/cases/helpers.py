"""What the case tests share: the scenario's policy, the eve of a holiday, and short ways to report,
read and walk a case."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cases.actions import CaseFlow, Report
from cases.models import Case, CaseEvent
from cases.policy import CasePolicy
from tests.alerts.scenario import CONFIG

CST = ZoneInfo("Asia/Shanghai")
POLICY = CasePolicy.load(CONFIG)

# Wednesday 30 September 2026, 17:55 — five minutes before the National Day holiday (1–7 October).
EVE = datetime(2026, 9, 30, 17, 55, tzinfo=CST)


def report(flow: CaseFlow, now: datetime, category: str = "fire_lane_blocked", grid: str = "g-north") -> int:
    case_id, merged = flow.report(
        Report(
            "zhuganxiang", grid, category, "车辆占用消防通道", "3号楼 消防通道", reporter_phone="13800000000"
        ),
        actor="resident",
        now=now,
    )
    assert merged is None
    return case_id


def case(db: Engine, case_id: int) -> Case:
    with Session(db) as session:
        found = session.get(Case, case_id)
        assert found is not None
        return found


def events(db: Engine, case_id: int) -> list[tuple[str, str | None]]:
    with Session(db) as session:
        rows = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id))
        return [(e.action, e.to_state) for e in rows]


def walk(
    flow: CaseFlow,
    case_id: int,
    steps: list[tuple[str, dict[str, object]]],
    start: datetime,
    step: timedelta = timedelta(minutes=10),
) -> datetime:
    now = start
    for action, params in steps:
        now += step
        flow.act(case_id, action, actor="wang.wei", params=params, now=now)
    return now


HAPPY = [
    ("accept", {}),
    ("verify", {}),
    ("assign", {"assignee": "li.na"}),
    ("sign", {}),
    ("feedback", {}),
    ("check", {}),
    ("pass", {}),
]
