"""The case queue as the console and the API read it: in a jurisdiction, filtered, searched, sorted, paged.

The jurisdiction arrives as a WHERE clause: who sees which cases is the API's decision, not the
domain's, and the queue only applies it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from cases.models import OPEN_STATES, Case, CaseEvent, CaseState, Evidence
from cases.queue_filters import FACETS, NO_ASSIGNEE, Facet, FacetGroup, QueueView

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


# The console's queue: open cases only, filtered, searched and sorted as the operator's view says.


def queue_sla(now: datetime) -> ColumnElement[str]:
    """The SLA state a queue row shows, in SQL: paused while suspended, overdue once the deadline or the
    running stage's due time passed, warning once the SLA monitor found 80 % of the stage used."""
    return case(
        (Case.state == CaseState.SUSPENDED.value, "paused"),
        (or_(Case.deadline <= now, Case.stage_due <= now), "overdue"),
        (Case.stage_warned.is_(True), "warning"),
        else_="on_time",
    )


def _searched(q: str) -> ColumnElement[bool]:
    """A case number (``42`` or ``#42``), or words in the title or an evidence location."""
    needle = q.lower()
    matches = or_(
        func.lower(Case.title).contains(needle, autoescape=True),
        exists().where(
            Evidence.case_id == Case.id, func.lower(Evidence.location).contains(needle, autoescape=True)
        ),
    )
    number = q.removeprefix("#").strip()
    if number.isdigit() and len(number) <= 12:
        return or_(Case.id == int(number), matches)
    return matches


def _facet_test(facet: Facet, value: str, now: datetime) -> ColumnElement[bool]:
    if facet == "sla":
        return queue_sla(now) == value
    if facet == "assignee" and value == NO_ASSIGNEE:
        return Case.assignee.is_(None)
    column = {
        "category": Case.category,
        "grid": Case.grid,
        "state": Case.state,
        "source": Case.source,
        "assignee": Case.assignee,
    }[facet]
    return column == value


def queue_where(jurisdiction: ColumnElement[bool], view: QueueView, now: datetime) -> ColumnElement[bool]:
    """Open, inside ``jurisdiction``, and passing every filter and the search of ``view``."""
    tests = [_still_open(), jurisdiction]
    tests += [_facet_test(f, view.value(f), now) for f in view.active]
    if view.q:
        tests.append(_searched(view.q))
    return and_(*tests)


_SEVERITY_RANK = case(
    (Case.severity == "critical", 0), (Case.severity == "warning", 1), (Case.severity == "info", 2), else_=3
)


def due_at() -> ColumnElement[datetime]:
    """When a case is next due: its running stage, else its deadline (what the countdown shows)."""
    return func.coalesce(Case.stage_due, Case.deadline)


def _sorted(query: Select[Case], view: QueueView) -> Select[Case]:
    if view.sort == "newest":
        return _newest_first(query)
    if view.sort == "severity":
        return query.order_by(_SEVERITY_RANK, due_at(), Case.id)
    return query.order_by(due_at(), Case.id)


def queue_page(
    session: Session,
    jurisdiction: ColumnElement[bool],
    view: QueueView,
    now: datetime,
    limit: int = CONSOLE_QUEUE,
) -> list[Case]:
    """The first ``limit`` open cases of the view, in its order."""
    query = select(Case).where(queue_where(jurisdiction, view, now))
    return list(session.scalars(_sorted(query, view).limit(limit)))


def queue_rows(
    session: Session, jurisdiction: ColumnElement[bool], view: QueueView, ids: Sequence[int], now: datetime
) -> list[Case]:
    """Of the cases ``ids``, those the view holds now (a live update: the rest leave the list)."""
    if not ids:
        return []
    query = select(Case).where(Case.id.in_(list(ids)), queue_where(jurisdiction, view, now))
    return list(session.scalars(_sorted(query, view)))


def facet_groups(
    session: Session, jurisdiction: ColumnElement[bool], view: QueueView, now: datetime
) -> list[FacetGroup]:
    """The open cases of the jurisdiction (narrowed by the view's search only) counted per
    combination of the facets' values: one grouped pass, from which every count beside a filter
    value is summed (cases.queue_filters.count_facets)."""
    sla = queue_sla(now).label("sla")
    columns = {
        "category": Case.category,
        "grid": Case.grid,
        "state": Case.state,
        "sla": sla,
        "source": Case.source,
        "assignee": func.coalesce(Case.assignee, ""),
    }
    selected = [columns[f] for f in FACETS]
    where = queue_where(jurisdiction, QueueView(q=view.q), now)
    rows = session.execute(select(*selected, func.count()).where(where).group_by(*selected))
    return [FacetGroup(values=tuple(str(v) for v in row[:-1]), cases=int(row[-1])) for row in rows]  # type: ignore[arg-type]


# Beyond this many events since a stream's mark, naming the changed cases costs more than refreshing.
CHANGE_SCAN_LIMIT = 10_000


def newest_event_id(session: Session) -> int:
    """The newest case event anywhere (0 for none): the primary key's maximum, an index look-up."""
    return int(session.scalar(select(func.max(CaseEvent.id))) or 0)


def changed_cases(
    session: Session, jurisdiction: ColumnElement[bool], after: int, limit: int
) -> tuple[int, list[int] | None]:
    """The newest event id, and the cases of the jurisdiction with an event after ``after`` (at most
    ``limit``); None instead of the cases when too many events passed to name them."""
    latest = newest_event_id(session)
    if latest <= after:
        return latest, []
    if latest - after > CHANGE_SCAN_LIMIT:
        return latest, None
    query = (
        select(CaseEvent.case_id)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(CaseEvent.id > after, CaseEvent.id <= latest, jurisdiction)
        .distinct()
        .limit(limit)
    )
    return latest, [int(i) for i in session.scalars(query)]
