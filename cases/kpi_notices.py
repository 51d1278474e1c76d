"""The period's 通报 (circulated notice): the overdue and the returned cases of each unit, from the log.

Overdue: a supervision order (督办, the ``supervise`` event) issued in the period, counted against the
unit it names — a town, or a department while it held a called-up case. Returned: a department
returning a town's call (``call_return``, against that department) and a case handed back by its
assignee (``return``, 回退, against the town that owns it). Each case appears once per unit and kind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cases.models import Case, CaseEvent

NoticeKind = Literal["overdue", "returned"]
NOTICE_ACTIONS = ("supervise", "call_return", "return")


@dataclass(frozen=True, slots=True)
class NoticedCase:
    case_id: int
    community: str
    grid: str
    category: str
    at: datetime  # the first event of this kind against the unit in the period


@dataclass(frozen=True, slots=True)
class UnitNotice:
    unit: str
    overdue: tuple[NoticedCase, ...]
    returned: tuple[NoticedCase, ...]
    orders: int  # supervision orders issued (a case may get several)
    escalated: int  # of which level 2, to the unit's leader


def _department_of_call(case_id: int, before_id: int, calls: dict[int, list[tuple[int, str]]]) -> str:
    """The department named by the case's last call-up before the event ``before_id``."""
    named = [department for event_id, department in calls.get(case_id, []) if event_id < before_id]
    return named[-1] if named else ""


def monthly_notices(
    db: Engine,
    *,
    start: datetime,
    end: datetime,
    communities: Collection[str] | None = None,
    grid: str | None = None,
) -> list[UnitNotice]:
    """The units with an overdue or returned case in [start, end) (of ``communities`` and ``grid`` when
    given), the most noticed first."""
    query = (
        select(
            CaseEvent.id,
            CaseEvent.case_id,
            CaseEvent.action,
            CaseEvent.at,
            CaseEvent.data,
            Case.community,
            Case.grid,
            Case.category,
            Case.owner_town,
        )
        .join(Case, Case.id == CaseEvent.case_id)
        .where(CaseEvent.action.in_(NOTICE_ACTIONS), CaseEvent.at >= start, CaseEvent.at < end)
        .order_by(CaseEvent.id)
    )
    if communities is not None:
        query = query.where(Case.community.in_(list(communities)))
    if grid is not None:
        query = query.where(Case.grid == grid)
    with Session(db) as session:
        rows = list(session.execute(query))
        returned_calls = sorted({r.case_id for r in rows if r.action == "call_return"})
        calls: dict[int, list[tuple[int, str]]] = defaultdict(list)
        if returned_calls:
            for event_id, case_id, data in session.execute(
                select(CaseEvent.id, CaseEvent.case_id, CaseEvent.data)
                .where(CaseEvent.action == "call_up", CaseEvent.case_id.in_(returned_calls))
                .order_by(CaseEvent.id)
            ):
                calls[case_id].append((event_id, str((data or {}).get("department", ""))))
    listed: dict[tuple[str, NoticeKind], dict[int, NoticedCase]] = defaultdict(dict)
    orders: dict[str, int] = defaultdict(int)
    escalated: dict[str, int] = defaultdict(int)
    for row in rows:
        data = row.data or {}
        kind: NoticeKind
        if row.action == "supervise":
            unit, kind = str(data.get("unit") or row.owner_town or row.community), "overdue"
            orders[unit] += 1
            escalated[unit] += int(data.get("level", 1)) >= 2
        elif row.action == "call_return":
            unit, kind = _department_of_call(row.case_id, row.id, calls), "returned"
        else:
            unit, kind = row.owner_town or row.community, "returned"
        noticed = NoticedCase(row.case_id, row.community, row.grid, row.category, row.at)
        listed[(unit, kind)].setdefault(row.case_id, noticed)
    units = sorted({unit for unit, _ in listed})
    notices = [
        UnitNotice(
            unit=unit,
            overdue=tuple(listed[(unit, "overdue")].values()),
            returned=tuple(listed[(unit, "returned")].values()),
            orders=orders[unit],
            escalated=escalated[unit],
        )
        for unit in units
    ]
    return sorted(notices, key=lambda n: (-(len(n.overdue) + len(n.returned)), n.unit))
