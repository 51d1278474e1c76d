"""A generated month of cases whose KPIs, department figures and 通报 are known by hand: November 2026
(Shanghai) in two towns, worked through the real workflow, plus two October cases for the comparison.

Town A (yuehe, community zhuganxiang) gets cases 0–29 on grids g-north/g-middle/g-south in turn; town
B (xinhe-town, community xinhe) cases 30–39 on xg-north/xg-middle/xg-south. Each case is reported by a
resident whose phone (``PHONE``) is stored with it; a staff phone lives in the organisation file.

- completed (核查通过): 0–23 and 30–39; late (passed 20 days after opening): 1, 7, 11 and 35; the rest
  pass an hour after opening, well inside the 8 working hours of ``fire_lane_blocked``.
- return visits: 0–19 satisfied, 20 unsatisfied (which reopens it: rework), 21–23 unreachable.
- 24–26 are left in handling, 28–29 new, 27 voided (duplicate).
- 镇呼区应: 0 to enforcement (responds in 10 min, resolves in 30: on time, rated 5); 1 to enforcement
  (resolves 19 days later: late, rated 4); 2 to enforcement (returned after 30 min, rated 2); 4 to
  water (resolved in 30 min, not rated).
- 回退: case 5 is handed back once by its assignee (against yuehe).
- 督办: case 7 twice (levels 1 and 2) and case 11 once against yuehe; case 1 once against enforcement
  while it is called up.
- October: two cases in town A, one on time and one late.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cases.actions import CaseFlow, open_case, supervise
from cases.kpi_periods import Period, calendar_period
from cases.models import Case
from cases.policy import CasePolicy

CST = ZoneInfo("Asia/Shanghai")
NOVEMBER: Period = calendar_period("month", date(2026, 11, 1), CST)
PHONE = "13912345678"  # the residents' phone: must never leave the database
A_GRIDS = ("g-north", "g-middle", "g-south")
B_GRIDS = ("xg-north", "xg-middle", "xg-south")
LATE = {1, 7, 11, 35}
CATEGORY = "fire_lane_blocked"


def _place(i: int) -> tuple[str, str]:
    return ("zhuganxiang", A_GRIDS[i % 3]) if i < 30 else ("xinhe", B_GRIDS[i % 3])


def opened_at(i: int) -> datetime:
    """Case i opens on 2 November + (i mod 20) days, at 09:00 + (i div 20) hours, local time."""
    return datetime(2026, 11, 2, 9, 0, tzinfo=CST) + timedelta(days=i % 20, hours=i // 20)


def _open(db: Engine, policy: CasePolicy, community: str, grid: str, now: datetime) -> int:
    with Session(db) as session, session.begin():
        case = open_case(
            session,
            policy,
            community=community,
            grid=grid,
            category=CATEGORY,
            title="消防通道占用：3号楼",
            source="report",
            severity="warning",
            actor="resident",
            action="reported",
            note="",
            now=now,
            reporter_phone=PHONE,
        )
        session.flush()
        return case.id


def _supervise(db: Engine, case_id: int, unit: str, level: int, now: datetime) -> None:
    with Session(db) as session, session.begin():
        case = session.get(Case, case_id)
        assert case is not None
        supervise(session, case, level=level, addressed_to="li.na", unit=unit, actor="system:sla", now=now)


class _Walk:
    def __init__(self, flow: CaseFlow, case_id: int, start: datetime) -> None:
        self.flow, self.case_id, self.now = flow, case_id, start

    def __call__(self, action: str, after: timedelta = timedelta(minutes=1), **params: Any) -> None:
        self.now += after
        self.flow.act(self.case_id, action, actor="wang.wei", params=params, now=self.now)


def generate_month(db: Engine, policy: CasePolicy) -> dict[int, int]:
    """The month's cases (and October's two); returns case number -> case id."""
    flow = CaseFlow(db, policy)
    ids: dict[int, int] = {}
    for i in range(40):
        community, grid = _place(i)
        start = opened_at(i)
        ids[i] = case_id = _open(db, policy, community, grid, start)
        step = _Walk(flow, case_id, start)
        if i == 27:
            step("void", reason="duplicate")
            continue
        if i in (28, 29):
            continue
        step("accept")
        step("verify")
        step("assign", assignee="li.na")
        if i == 5:
            step("return", reason="不属本网格", approved_by="chen.jie")
            step("assign", assignee="li.na")
        step("sign")
        if i in (24, 25, 26):
            continue
        if i == 0:
            step("call_up", department="enforcement", approved_by="chen.jie")
            step("respond", after=timedelta(minutes=10))
            step("call_resolve", after=timedelta(minutes=20))
            step("rate_call", rating=5)
        elif i == 1:
            step("call_up", department="enforcement", approved_by="chen.jie")
            _supervise(db, case_id, "enforcement", 1, step.now + timedelta(hours=3))
            step("call_resolve", after=timedelta(days=19))
            step("rate_call", rating=4)
        elif i == 2:
            step("call_up", department="enforcement", approved_by="chen.jie")
            step("call_return", after=timedelta(minutes=30), reason="不属本部门职责")
            step("rate_call", rating=2)
            step("feedback", after=timedelta(minutes=1))
        elif i == 4:
            step("call_up", department="water", approved_by="chen.jie")
            step("call_resolve", after=timedelta(minutes=30))
        else:
            step("feedback")
        if i == 7:
            _supervise(db, case_id, "yuehe", 1, step.now + timedelta(days=2))
            _supervise(db, case_id, "yuehe", 2, step.now + timedelta(days=3))
        if i == 11:
            _supervise(db, case_id, "yuehe", 1, step.now + timedelta(days=2))
        step("check")
        done = start + (timedelta(days=20) if i in LATE else timedelta(hours=1))
        step("pass", after=done - step.now)
        if i < 20:
            step("visit", outcome="satisfied")
        elif i == 20:
            step("visit", outcome="unsatisfied")
        elif i < 24:
            step("visit", outcome="unreachable")
    for n, late in ((100, False), (101, True)):
        start = datetime(2026, 10, 13, 9, 0, tzinfo=CST) + timedelta(days=n - 100)
        ids[n] = case_id = _open(db, policy, "zhuganxiang", "g-north", start)
        step = _Walk(flow, case_id, start)
        step("accept")
        step("verify")
        step("assign", assignee="li.na")
        step("sign")
        step("feedback")
        step("check")
        step("pass", after=start + timedelta(days=20 if late else 0, hours=1) - step.now)
    return ids
