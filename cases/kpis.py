"""KPIs as the seed reports them, recomputed from the case event log.

calls (cases that entered 镇呼区应), completion rate (办结率), on-time completion rate (按时办结率;
an approved extension moves the deadline, so it counts as on time), satisfaction rate (满意率) — for
all cases and for calls alone — plus rework, extension and false-alarm rates. Scope: the district, a
town, a community or a grid; period: cases opened in [start, end).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cases.models import Case, CaseEvent, CaseState
from cases.policy import CasePolicy

Level = Literal["district", "town", "community", "grid"]
COMPLETED = "pass"  # 核查通过·结案
# Visit outcomes that count as satisfied (满意, 基本满意); an unreachable resident counts neither way.
SATISFIED = ("satisfied", "basically_satisfied")
# The only events a KPI reads; the rest of a case's log stays in the database.
KPI_ACTIONS = ("call_up", COMPLETED, "extend", "resume", "fail", "reopen", "void", "visit")
DATA_FACTS = ("deadline", "reason", "outcome")  # what a KPI reads of an event's data


@dataclass(frozen=True)
class Rates:
    cases: int
    completed: int
    completion_rate: float | None
    on_time_rate: float | None
    satisfaction_rate: float | None


@dataclass(frozen=True)
class Kpis:
    level: Level
    scope: str
    start: datetime
    end: datetime
    calls: int
    all_cases: Rates
    called_cases: Rates
    rework_rate: float | None
    extension_rate: float | None
    void_rate: float | None
    false_alarm_rate: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


class _Event(Protocol):
    """A KPI event with the three facts of its data a KPI reads, taken out by the database."""

    case_id: int
    action: str
    at: datetime
    deadline: str | None
    reason: str | None
    outcome: str | None


@dataclass
class _Life:
    """One case's life as its events tell it."""

    deadline: datetime
    called: bool = False
    completed_at: datetime | None = None
    extended: bool = False
    reworked: bool = False
    voided: str | None = None
    visit: str | None = None

    def add(self, event: _Event) -> None:
        if event.action == "call_up":
            self.called = True
        elif event.action == COMPLETED and self.completed_at is None:
            self.completed_at = event.at
        elif event.action in ("extend", "resume") and event.deadline is not None:
            self.deadline = datetime.fromisoformat(event.deadline)
            self.extended = self.extended or event.action == "extend"
        elif event.action in ("fail", "reopen"):
            self.reworked = True
        elif event.action == "void":
            self.voided = event.reason or ""
        elif event.action == "visit":
            self.visit = event.outcome or ""
            self.reworked = self.reworked or self.visit == "unsatisfied"


def _rates(lives: list[_Life]) -> Rates:
    counted = [life for life in lives if life.voided is None]
    completed = [life for life in counted if life.completed_at is not None]
    on_time = [
        life for life in completed if life.completed_at is not None and life.completed_at <= life.deadline
    ]
    visited = [life for life in counted if life.visit in (*SATISFIED, "unsatisfied")]
    return Rates(
        cases=len(counted),
        completed=len(completed),
        completion_rate=rate(len(completed), len(counted)),
        on_time_rate=rate(len(on_time), len(completed)),
        satisfaction_rate=rate(sum(life.visit in SATISFIED for life in visited), len(visited)),
    )


@dataclass(frozen=True, slots=True)
class LivedCase:
    """A case's place, opening and source, with its life as the event log tells it."""

    id: int
    community: str
    grid: str
    category: str
    opened_at: datetime
    source: str
    life: _Life


def load_lives(
    db: Engine,
    *,
    start: datetime,
    end: datetime,
    communities: Collection[str] | None = None,
    grid: str | None = None,
) -> list[LivedCase]:
    """The cases opened in [start, end) (within ``communities`` and ``grid`` when given), each with the
    life its KPI events tell. One pass over the log: a report summarises any grouping of it after."""
    query = select(
        Case.id, Case.deadline, Case.source, Case.community, Case.grid, Case.category, Case.opened_at
    ).where(Case.opened_at >= start, Case.opened_at < end, Case.state != CaseState.MERGED.value)
    if communities is not None:
        query = query.where(Case.community.in_(list(communities)))
    if grid is not None:
        query = query.where(Case.grid == grid)
    # Plain rows, not ORM objects: a month of a district is ~10^5 events.
    with Session(db) as session:
        cases = {row.id: row for row in session.execute(query)}
        events: dict[int, list[_Event]] = defaultdict(list)
        if cases:
            # The data's three facts as text from the database: decoding every event's JSON in
            # Python was half the time of a district's month.
            facts = (
                CaseEvent.data[name].as_string().label(name) for name in ("deadline", "reason", "outcome")
            )
            for row in session.execute(
                select(CaseEvent.case_id, CaseEvent.action, CaseEvent.at, *facts)
                .where(
                    CaseEvent.case_id.in_(select(query.subquery().c.id)), CaseEvent.action.in_(KPI_ACTIONS)
                )
                .order_by(CaseEvent.id)
            ):
                events[row.case_id].append(row)
    lived = []
    for case_id, case in cases.items():
        # The case's deadline as approved extensions and suspensions left it (each also in its event).
        life = _Life(deadline=case.deadline)
        for event in events[case_id]:
            life.add(event)
        lived.append(
            LivedCase(case_id, case.community, case.grid, case.category, case.opened_at, case.source, life)
        )
    return lived


def summarise(level: Level, scope: str, start: datetime, end: datetime, lived: Iterable[LivedCase]) -> Kpis:
    """The KPIs of the given cases (already narrowed to the scope and period)."""
    cases = list(lived)
    all_lives = [c.life for c in cases]
    sensor = [c.life for c in cases if c.source == "sensor"]
    counted = [life for life in all_lives if life.voided is None]
    return Kpis(
        level=level,
        scope=scope,
        start=start,
        end=end,
        calls=sum(life.called for life in all_lives),
        all_cases=_rates(all_lives),
        called_cases=_rates([life for life in all_lives if life.called]),
        rework_rate=rate(
            sum(life.reworked for life in counted), sum(life.completed_at is not None for life in counted)
        ),
        extension_rate=rate(sum(life.extended for life in counted), len(counted)),
        void_rate=rate(sum(life.voided is not None for life in all_lives), len(all_lives)),
        false_alarm_rate=rate(sum(life.voided == "false_alarm" for life in sensor), len(sensor)),
    )


def scope_communities(policy: CasePolicy, level: Level, scope: str) -> list[str] | None:
    """The communities a district, town or community scope covers (None: every one; a grid: None, the
    grid narrows by itself)."""
    if level == "town":
        return next((list(t.communities) for t in policy.organisation.towns if t.id == scope), [])
    if level == "community":
        return [scope]
    return None


def scope_lives(
    db: Engine, policy: CasePolicy, *, level: Level, scope: str, start: datetime, end: datetime
) -> list[LivedCase]:
    """``load_lives`` for one scope (district, town, community or grid): its cases opened in [start, end)."""
    return load_lives(
        db,
        start=start,
        end=end,
        communities=scope_communities(policy, level, scope),
        grid=scope if level == "grid" else None,
    )


def compute_kpis(
    db: Engine, policy: CasePolicy, *, level: Level, scope: str, start: datetime, end: datetime
) -> Kpis:
    lived = scope_lives(db, policy, level=level, scope=scope, start=start, end=end)
    return summarise(level, scope, start, end, lived)
