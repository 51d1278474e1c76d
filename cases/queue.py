"""The case queue as the console and the API read it: newest first, within a jurisdiction, filtered, paged.

The jurisdiction arrives as a WHERE clause: who sees which cases is the API's decision, not the
domain's, and the queue only applies it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from cases.models import OPEN_STATES, Case, CaseEvent, CaseState

SlaStatus = Literal["overdue", "due_soon"]
DUE_SOON = timedelta(hours=1)
CONSOLE_QUEUE = 200


@dataclass(frozen=True, slots=True)
class CaseFilters:
    """What a listing narrows to; an empty field does not narrow."""

    states: Sequence[CaseState] = ()
    open_only: bool = False
    category: str | None = None
    grid: str | None = None
    assignee: str | None = None
    # overdue: the deadline passed and the case is still open; due_soon: the running stage or the
    # deadline falls due within DUE_SOON.
    sla: SlaStatus | None = None


@dataclass(frozen=True, slots=True)
class CasePage:
    total: int
    cases: list[Case]


def _still_open() -> ColumnElement[bool]:
    return Case.state.in_([s.value for s in OPEN_STATES])


def _newest_first(query: Select[Case]) -> Select[Case]:
    return query.order_by(Case.opened_at.desc(), Case.id.desc())


def open_queue(session: Session, jurisdiction: ColumnElement[bool], limit: int = CONSOLE_QUEUE) -> list[Case]:
    """The open cases an operator works through, newest first."""
    query = select(Case).where(_still_open(), jurisdiction)
    return list(session.scalars(_newest_first(query).limit(limit)))


def filtered(
    jurisdiction: ColumnElement[bool], filters: CaseFilters, now: datetime | None = None
) -> Select[Case]:
    """The cases inside ``jurisdiction`` that pass ``filters`` (``now`` dates the SLA filters)."""
    query = select(Case).where(jurisdiction)
    if filters.assignee:
        query = query.where(Case.assignee == filters.assignee)
    if filters.sla is not None:
        now = now or datetime.now(UTC)
        if filters.sla == "overdue":
            query = query.where(_still_open(), Case.deadline < now)
        else:
            soon = now + DUE_SOON
            query = query.where(
                _still_open(), or_(Case.stage_due.between(now, soon), Case.deadline.between(now, soon))
            )
    if filters.states:
        query = query.where(Case.state.in_([s.value for s in filters.states]))
    if filters.open_only:
        query = query.where(_still_open())
    if filters.category:
        query = query.where(Case.category == filters.category)
    if filters.grid:
        query = query.where(Case.grid == filters.grid)
    return query


def list_cases(
    session: Session,
    jurisdiction: ColumnElement[bool],
    filters: CaseFilters,
    limit: int,
    offset: int,
    now: datetime | None = None,
) -> CasePage:
    """One page of the filtered cases, newest first, with how many there are in all."""
    query = filtered(jurisdiction, filters, now)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(_newest_first(query).limit(limit).offset(offset))
    return CasePage(total=total, cases=list(rows))


def case_with_history(session: Session, jurisdiction: ColumnElement[bool], case_id: int) -> Case | None:
    """One case with its events and evidence loaded; None outside ``jurisdiction`` as for a missing id."""
    return session.scalar(
        select(Case)
        .where(Case.id == case_id, jurisdiction)
        .options(selectinload(Case.events), selectinload(Case.evidence))
    )


def service_requests(
    session: Session,
    jurisdiction: ColumnElement[bool],
    *,
    ids: Sequence[int] | None,
    opened: tuple[datetime, datetime],
    category: str | None,
    still_open: bool | None,
    limit: int,
) -> list[Case]:
    """Open311's listing: the given ids, or the cases opened in ``[start, end)``; newest id first."""
    query = select(Case).where(jurisdiction)
    if ids is not None:
        query = query.where(Case.id.in_(ids))
    else:
        query = query.where(Case.opened_at >= opened[0], Case.opened_at < opened[1])
    if category:
        query = query.where(Case.category == category)
    if still_open is not None:
        query = query.where(_still_open() if still_open else ~_still_open())
    return list(session.scalars(query.order_by(Case.id.desc()).limit(limit)))


def visible_case(session: Session, jurisdiction: ColumnElement[bool], case_id: int) -> Case | None:
    """One case, if it lies in the jurisdiction (outside it, it does not exist)."""
    return session.scalar(select(Case).where(Case.id == case_id, jurisdiction))


def latest_event_id(session: Session, jurisdiction: ColumnElement[bool]) -> int:
    """The newest event of any case in the jurisdiction (0 for none): a change elsewhere does not move it."""
    query = select(func.max(CaseEvent.id)).join(Case, Case.id == CaseEvent.case_id).where(jurisdiction)
    return int(session.scalar(query) or 0)
