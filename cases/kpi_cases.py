"""The cases behind a KPI figure: the drill-down from "on time 94 %" to the cases that were late.

The selection reads the same event-log computation as the figure (``cases.kpis.load_lives``) and applies
the same tests as ``cases.kpis`` does when it counts, so a list and its figure always agree: the list of
``completed`` is as long as the figure's completed count, ``late`` is completed minus on time, and so on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cases.kpis import SATISFIED, Level, LivedCase, scope_communities, scope_lives
from cases.models import Case
from cases.policy import CasePolicy

Figure = Literal[
    "cases",  # counted cases (not voided): the denominator of the completion rate
    "completed",  # completed (核查通过): completion's numerator, on-time's denominator
    "unfinished",  # counted but not completed
    "on_time",  # completed by the deadline (as approved extensions moved it)
    "late",  # completed after the deadline
    "calls",  # cases that went up to the district (镇呼区应)
    "visited",  # reached on the return visit: satisfaction's denominator
    "satisfied",  # satisfied or basically satisfied
    "unsatisfied",
    "extended",
    "reworked",
    "voided",
]
FIGURES: tuple[str, ...] = get_args(Figure)
PAGE_SIZE = 50
MAX_PAGE = 10_000  # a page number past this is nobody's question (and would overflow an offset)

Outcome = Literal["on_time", "late", "unfinished", "voided"]


def _counted(case: LivedCase) -> bool:
    return case.life.voided is None


def _completed(case: LivedCase) -> bool:
    return _counted(case) and case.life.completed_at is not None


def _on_time(case: LivedCase) -> bool:
    done = case.life.completed_at
    return _counted(case) and done is not None and done <= case.life.deadline


def _visited(case: LivedCase) -> bool:
    return _counted(case) and case.life.visit in (*SATISFIED, "unsatisfied")


# One test per figure, the same ones cases.kpis applies when it counts.
SELECTORS: dict[str, Callable[[LivedCase], bool]] = {
    "cases": _counted,
    "completed": _completed,
    "unfinished": lambda c: _counted(c) and c.life.completed_at is None,
    "on_time": _on_time,
    "late": lambda c: _completed(c) and not _on_time(c),
    "calls": lambda c: c.life.called,
    "visited": _visited,
    "satisfied": lambda c: _visited(c) and c.life.visit in SATISFIED,
    "unsatisfied": lambda c: _visited(c) and c.life.visit == "unsatisfied",
    "extended": lambda c: _counted(c) and c.life.extended,
    "reworked": lambda c: _counted(c) and c.life.reworked,
    "voided": lambda c: c.life.voided is not None,
}


class DrillError(ValueError):
    """A figure or page the drill-down does not know."""


def in_scope(policy: CasePolicy, level: Level, scope: str, lived: Iterable[LivedCase]) -> list[LivedCase]:
    """The cases of one scope, out of cases loaded for a wider one (the district's, say)."""
    if level == "grid":
        return [c for c in lived if c.grid == scope]
    communities = scope_communities(policy, level, scope)
    if communities is None:
        return list(lived)
    wanted = set(communities)
    return [c for c in lived if c.community in wanted]


def select_cases(figure: str, lived: Iterable[LivedCase]) -> list[LivedCase]:
    """The cases behind ``figure``, newest first (then by number)."""
    test = SELECTORS.get(figure)
    if test is None:
        raise DrillError(f"unknown figure {figure!r}: one of {', '.join(FIGURES)}")
    chosen = [c for c in lived if test(c)]
    return sorted(chosen, key=lambda c: (_aware(c.opened_at), c.id), reverse=True)


def outcome(case: LivedCase) -> Outcome:
    """How the case stands for the on-time figure: voided, unfinished, on time or late."""
    if case.life.voided is not None:
        return "voided"
    if case.life.completed_at is None:
        return "unfinished"
    return "on_time" if _on_time(case) else "late"


@dataclass(frozen=True, slots=True)
class DrillRow:
    case: Case  # the stored case (title, severity, SLA clocks), read for the rows shown only
    community: str
    grid: str
    category: str
    opened_at: datetime
    completed_at: datetime | None
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class DrillPage:
    figure: str
    total: int
    page: int
    pages: int
    rows: list[DrillRow]


def drill_down(
    db: Engine,
    policy: CasePolicy,
    *,
    level: Level,
    scope: str,
    start: datetime,
    end: datetime,
    figure: str,
    page: int = 1,
) -> DrillPage:
    """One page (``PAGE_SIZE``) of the cases behind ``figure`` for a scope and period [start, end)."""
    if not 1 <= page <= MAX_PAGE:
        raise DrillError(f"page must be between 1 and {MAX_PAGE}")
    lived = scope_lives(db, policy, level=level, scope=scope, start=start, end=end)
    chosen = select_cases(figure, lived)
    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    shown = chosen[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return DrillPage(figure, len(chosen), page, pages, _rows(db, shown))


def _rows(db: Engine, shown: Sequence[LivedCase]) -> list[DrillRow]:
    """The page's rows with their titles: read only for the (at most PAGE_SIZE) cases shown."""
    if not shown:
        return []
    with Session(db, expire_on_commit=False) as session:
        stored = {
            case.id: case for case in session.scalars(select(Case).where(Case.id.in_([c.id for c in shown])))
        }
        session.expunge_all()
    return [
        DrillRow(
            stored[c.id],
            c.community,
            c.grid,
            c.category,
            _aware(c.opened_at),
            _aware(c.life.completed_at) if c.life.completed_at is not None else None,
            outcome(c),
        )
        for c in shown
    ]


def _aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they are stored in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
