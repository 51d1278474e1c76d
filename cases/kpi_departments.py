"""KPIs of district departments (镇呼区应), recomputed from the case event log.

A call is one ``call_up`` event; it belongs to the period its call falls in and to the department it
named. The department then responds, resolves (``call_resolve``: completed) or returns it
(``call_return``). On time: it responded within the respond limit and resolved within the resolve limit
counted from its response (a department that resolves without a separate response responds by
resolving) — the same limits the SLA clocks hold it to, office hours. The towns rate a call's response
(``rate_call``, 1–5); a call's rating is the last one given after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cases.kpis import rate
from cases.models import Case, CaseEvent
from cases.policy import CasePolicy

CALL_ACTIONS = ("call_up", "respond", "call_resolve", "call_return", "rate_call")
RATINGS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class DepartmentKpis:
    department: str
    start: datetime
    end: datetime
    calls: int
    completed: int
    on_time: int
    returned: int
    completion_rate: float | None
    on_time_rate: float | None  # of the completed calls
    return_rate: float | None
    rated: int
    average_rating: float | None
    rating_distribution: dict[int, int]  # 1..5 -> calls rated so

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Call:
    department: str
    at: datetime
    category: str
    urgency: str
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    returned: bool = False
    rating: int | None = None
    ended: bool = field(default=False)

    def on_time(self, policy: CasePolicy) -> bool:
        if self.resolved_at is None:
            return False
        responded = self.responded_at or self.resolved_at
        respond_due = policy.stage_due(self.category, "respond", self.at, self.urgency)
        resolve_due = policy.stage_due(self.category, "resolve_call", responded, self.urgency)
        return (respond_due is None or responded <= respond_due) and (
            resolve_due is None or self.resolved_at <= resolve_due
        )


def _rating(text: str | None) -> int | None:
    """A stored rating (1–5) read back as text; anything else is no rating."""
    try:
        return int(text or 0) or None
    except ValueError:
        return None


def _calls(db: Engine, start: datetime, end: datetime, communities: Collection[str] | None) -> list[_Call]:
    called = (
        select(CaseEvent.case_id)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(CaseEvent.action == "call_up", CaseEvent.at >= start, CaseEvent.at < end)
    )
    if communities is not None:
        called = called.where(Case.community.in_(list(communities)))
    query = (
        select(
            CaseEvent.case_id,
            CaseEvent.action,
            CaseEvent.at,
            # The two facts as text from the database, not every event's JSON decoded in Python.
            CaseEvent.data["department"].as_string().label("department"),
            CaseEvent.data["rating"].as_string().label("rating"),
            Case.category,
            Case.urgency,
        )
        .join(Case, Case.id == CaseEvent.case_id)
        .where(CaseEvent.case_id.in_(called.distinct()), CaseEvent.action.in_(CALL_ACTIONS))
        .order_by(CaseEvent.case_id, CaseEvent.id)
    )
    calls: list[_Call] = []
    latest: dict[int, _Call] = {}
    with Session(db) as session:
        for row in session.execute(query):
            if row.action == "call_up":
                call = _Call(row.department or "", row.at, row.category, row.urgency)
                latest[row.case_id] = call
                if start <= row.at < end:
                    calls.append(call)
                continue
            call_or_none = latest.get(row.case_id)
            if call_or_none is None:
                continue
            call = call_or_none
            if row.action == "rate_call":
                call.rating = _rating(row.rating)
            elif call.ended:
                continue
            elif row.action == "respond":
                call.responded_at = call.responded_at or row.at
            elif row.action == "call_resolve":
                call.resolved_at, call.ended = row.at, True
            elif row.action == "call_return":
                call.returned, call.ended = True, True
    return calls


def department_kpis(
    db: Engine,
    policy: CasePolicy,
    *,
    start: datetime,
    end: datetime,
    communities: Collection[str] | None = None,
) -> dict[str, DepartmentKpis]:
    """Every department's KPIs for the calls of [start, end) (from ``communities`` when given); a
    department without a call is there with zeros."""
    by_department: dict[str, list[_Call]] = defaultdict(list)
    for call in _calls(db, start, end, communities):
        by_department[call.department].append(call)
    known = [d.id for d in policy.organisation.departments]
    result = {}
    for department in [*known, *sorted(set(by_department) - set(known))]:
        calls = by_department.get(department, [])
        completed = [c for c in calls if c.resolved_at is not None]
        on_time = sum(c.on_time(policy) for c in completed)
        ratings = [c.rating for c in calls if c.rating in RATINGS]
        result[department] = DepartmentKpis(
            department=department,
            start=start,
            end=end,
            calls=len(calls),
            completed=len(completed),
            on_time=on_time,
            returned=sum(c.returned for c in calls),
            completion_rate=rate(len(completed), len(calls)),
            on_time_rate=rate(on_time, len(completed)),
            return_rate=rate(sum(c.returned for c in calls), len(calls)),
            rated=len(ratings),
            average_rating=round(sum(r for r in ratings if r) / len(ratings), 2) if ratings else None,
            rating_distribution={r: ratings.count(r) for r in RATINGS},
        )
    return result
