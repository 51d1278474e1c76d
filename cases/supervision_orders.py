"""Supervision orders (督办) as people read and work them: listed within a jurisdiction, filtered and
paged, each with its state; issued by hand on a case; answered by the unit they target.

An order is *answered* once its target unit answered it, *overdue* while unanswered past its due time,
and *open* before that. States are judged as of a moment, so the same rules count them over time
(an order answered late was overdue until it was answered). The jurisdiction arrives as a WHERE clause
on cases: who sees what is the API's decision (``api/scope.py``), and who may issue or answer too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from sqlalchemy import ColumnElement, Engine, Select, and_, case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cases.actions import answer_supervision, supervise_manually
from cases.models import Case, CaseState, SupervisionOrder

OrderState = Literal["open", "answered", "overdue"]
ORDER_STATES: tuple[OrderState, ...] = ("open", "answered", "overdue")
OrderKind = Literal["auto", "manual"]
UnitKind = Literal["grid", "town", "department"]
REASON_MAX = 500
ANSWER_MAX = 2000
# Where a case is worked: by the grid once assigned, by the department while called up, else the town.
GRID_HELD = frozenset({CaseState.ASSIGNED.value, CaseState.HANDLING.value})


class SupervisionError(Exception):
    """An order cannot be issued or answered; ``field`` names the input to fix, if one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class OrderNotFound(SupervisionError):
    """No such order or case within the jurisdiction (HTTP 404)."""


class NotYours(SupervisionError):
    """The caller's role or unit may not do this (HTTP 403)."""


class AlreadyAnswered(SupervisionError):
    """The order has its answer (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class OrderFilters:
    """What a listing narrows to; an empty field does not narrow."""

    state: OrderState | None = None
    unit: str | None = None
    town: str | None = None  # the town that owns the case
    case_id: int | None = None
    kind: OrderKind | None = None
    issued_from: datetime | None = None  # inclusive
    issued_to: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    case_id: int
    case_title: str
    community: str
    grid: str
    category: str
    owner_town: str
    kind: str
    issued_at: datetime
    issued_by: str
    reason: str | None
    stage: str
    level: int
    unit: str
    addressed_to: str
    due_at: datetime
    state: OrderState
    answer: str | None
    answered_by: str | None
    answered_at: datetime | None

    @property
    def answered_late(self) -> bool:
        return self.answered_at is not None and self.answered_at > self.due_at


@dataclass(frozen=True, slots=True)
class OrderPage:
    total: int
    orders: list[OrderView]
    counts: dict[OrderState, int]  # of every order the filters select, state aside


def _answered_by(at: datetime) -> ColumnElement[bool]:
    return and_(SupervisionOrder.answered_at.is_not(None), SupervisionOrder.answered_at <= at)


def state_clause(state: OrderState, at: datetime) -> ColumnElement[bool]:
    """Orders issued by ``at`` that were in ``state`` at that moment."""
    issued = SupervisionOrder.issued_at <= at
    if state == "answered":
        return and_(issued, _answered_by(at))
    due_passed = SupervisionOrder.due_at <= at
    return and_(issued, ~_answered_by(at), due_passed if state == "overdue" else ~due_passed)


def state_at(order: SupervisionOrder, at: datetime) -> OrderState:
    """The same rules as :func:`state_clause`, on an order in hand."""
    if order.answered_at is not None and order.answered_at <= at:
        return "answered"
    return "overdue" if order.due_at <= at else "open"


def _selected(visible: ColumnElement[bool], filters: OrderFilters) -> Select[SupervisionOrder, Case]:
    query = select(SupervisionOrder, Case).join(Case, Case.id == SupervisionOrder.case_id).where(visible)
    conditions: list[ColumnElement[bool]] = []
    if filters.unit is not None:
        conditions.append(SupervisionOrder.unit == filters.unit)
    if filters.town is not None:
        conditions.append(Case.owner_town == filters.town)
    if filters.case_id is not None:
        conditions.append(SupervisionOrder.case_id == filters.case_id)
    if filters.kind is not None:
        conditions.append(SupervisionOrder.kind == filters.kind)
    if filters.issued_from is not None:
        conditions.append(SupervisionOrder.issued_at >= filters.issued_from)
    if filters.issued_to is not None:
        conditions.append(SupervisionOrder.issued_at < filters.issued_to)
    return query.where(*conditions)


def _view(order: SupervisionOrder, case_row: Case, now: datetime) -> OrderView:
    return OrderView(
        id=order.id,
        case_id=order.case_id,
        case_title=case_row.title,
        community=case_row.community,
        grid=case_row.grid,
        category=case_row.category,
        owner_town=case_row.owner_town,
        kind=order.kind,
        issued_at=order.issued_at,
        issued_by=order.issued_by,
        reason=order.reason,
        stage=order.stage,
        level=order.level,
        unit=order.unit,
        addressed_to=order.addressed_to,
        due_at=order.due_at,
        state=state_at(order, now),
        answer=order.answer,
        answered_by=order.answered_by,
        answered_at=order.answered_at,
    )


def count_states(
    db: Engine, visible: ColumnElement[bool], filters: OrderFilters, at: datetime
) -> dict[OrderState, int]:
    """How many of the selected orders were open, answered and overdue at ``at`` (one query)."""
    selected = _selected(visible, filters).where(SupervisionOrder.issued_at <= at).subquery()
    columns = selected.c  # the rules of state_clause, on the subquery's columns
    answered = and_(columns.answered_at.is_not(None), columns.answered_at <= at)
    overdue = and_(~answered, columns.due_at <= at)
    with Session(db) as session:
        row = session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((answered, 1), else_=0)), 0),
                func.coalesce(func.sum(case((overdue, 1), else_=0)), 0),
            ).select_from(selected)
        ).one()
    total, answered_n, overdue_n = (int(v) for v in row)
    return {"open": total - answered_n - overdue_n, "answered": answered_n, "overdue": overdue_n}


def list_orders(
    db: Engine,
    visible: ColumnElement[bool],
    filters: OrderFilters,
    *,
    now: datetime,
    limit: int,
    offset: int,
) -> OrderPage:
    """The selected orders as of ``now``, newest first, one page of them, and the states' counts."""
    counts = count_states(db, visible, filters, now)
    query = _selected(visible, filters)
    if filters.state is not None:
        query = query.where(state_clause(filters.state, now))
    with Session(db) as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.execute(
            query.order_by(SupervisionOrder.issued_at.desc(), SupervisionOrder.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
        orders = [_view(order, case_row, now) for order, case_row in rows]
    return OrderPage(total=total, orders=orders, counts=counts)


def order_view(db: Engine, visible: ColumnElement[bool], order_id: int, now: datetime) -> OrderView | None:
    """One order on a visible case, as of ``now``; None when there is none."""
    with Session(db) as session:
        found = session.execute(
            _selected(visible, OrderFilters()).where(SupervisionOrder.id == order_id)
        ).first()
        return None if found is None else _view(found[0], found[1], now)


class HeldCase(Protocol):
    """What the unit rules read of a case: the ORM row or the API's view of it."""

    state: str
    community: str
    grid: str
    owner_town: str
    department: str | None


def holding_unit(case_row: HeldCase) -> str:
    """The unit working the case now: the department it is called up to, the grid it is assigned in,
    else the town that owns it."""
    if case_row.state == CaseState.CALLED_UP.value and case_row.department:
        return case_row.department
    if case_row.state in GRID_HELD:
        return case_row.grid
    return case_row.owner_town or case_row.community


def case_units(case_row: HeldCase) -> dict[str, UnitKind]:
    """The units an order on this case may target: its grid, its town, and its department if any."""
    units: dict[str, UnitKind] = {case_row.grid: "grid", case_row.owner_town or case_row.community: "town"}
    if case_row.department:
        units[case_row.department] = "department"
    return units


@dataclass(frozen=True, slots=True)
class ManualOrder:
    reason: str
    due_at: datetime
    unit: str | None = None  # None: the unit holding the case


def issue_order(
    db: Engine,
    visible: ColumnElement[bool],
    case_id: int,
    order: ManualOrder,
    *,
    may_target: Callable[[UnitKind], bool],
    actor: str,
    now: datetime,
) -> int:
    """Issue a manual order on a visible case; returns its id. ``may_target`` is the caller's rule on
    the kinds of unit it may supervise (``api.scope``)."""
    reason = order.reason.strip()
    if not reason:
        raise SupervisionError("reason is required: say why the case is supervised", "reason")
    if len(reason) > REASON_MAX:
        raise SupervisionError(f"reason is {len(reason)} characters; at most {REASON_MAX}", "reason")
    if order.due_at.tzinfo is None:
        raise SupervisionError("deadline needs a UTC offset", "deadline")
    if order.due_at <= now:
        raise SupervisionError("deadline must be in the future", "deadline")
    with Session(db) as session, session.begin():
        case_row = session.scalars(select(Case).where(Case.id == case_id, visible)).first()
        if case_row is None:
            raise OrderNotFound(f"case {case_id} not found")
        units = case_units(case_row)
        unit = order.unit or holding_unit(case_row)
        if unit not in units:
            raise SupervisionError(
                f"target_unit {unit!r} does not work this case; one of {', '.join(units)}", "target_unit"
            )
        if not may_target(units[unit]):
            raise NotYours(f"you may not supervise the {units[unit]} {unit!r}; choose target_unit")
        try:
            issued = supervise_manually(
                session, case_row, unit=unit, reason=reason, due_at=order.due_at, actor=actor, now=now
            )
        except StaleDataError as err:  # pragma: no cover - the row was deleted meanwhile
            raise OrderNotFound(f"case {case_id} not found") from err
        return issued.id


def answer_order(
    db: Engine,
    visible: ColumnElement[bool],
    order_id: int,
    answer: str,
    *,
    may_answer: Callable[[str, UnitKind], bool],
    actor: str,
    now: datetime,
) -> OrderView:
    """The target unit's answer to a visible order; ``may_answer(unit, kind)`` says whether the caller
    speaks for the unit. The order is locked while it is answered: two answers, the second is refused."""
    text = answer.strip()
    if not text:
        raise SupervisionError("answer is required: say what was done", "answer")
    if len(text) > ANSWER_MAX:
        raise SupervisionError(f"answer is {len(text)} characters; at most {ANSWER_MAX}", "answer")
    with Session(db) as session, session.begin():
        found = session.execute(
            select(SupervisionOrder, Case)
            .join(Case, Case.id == SupervisionOrder.case_id)
            .where(SupervisionOrder.id == order_id, visible)
            .with_for_update(of=SupervisionOrder)
        ).first()
        if found is None:
            raise OrderNotFound(f"supervision order {order_id} not found")
        order, case_row = found[0], found[1]
        kind = unit_kind(order.unit, case_row)
        if not may_answer(order.unit, kind):
            raise NotYours(f"only the {kind} {order.unit!r} answers this order")
        if order.answered_at is not None:
            raise AlreadyAnswered(f"supervision order {order_id} was answered by {order.answered_by}")
        answer_supervision(session, case_row, order, answer=text, actor=actor, now=now)
        session.flush()
        return _view(order, case_row, now)


def unit_kind(unit: str, case_row: HeldCase | OrderView) -> UnitKind:
    """What an order's unit is to its case: the grid, the owning town, else a district department
    (one that held it once, the call since returned or resolved)."""
    if unit == case_row.grid:
        return "grid"
    return "town" if unit in (case_row.owner_town, case_row.community) else "department"
