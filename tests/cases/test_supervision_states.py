"""Supervision orders' states over time on the generated month (``tests/cases/kpi_month.py``): the
automatic orders it issues, one answered late and one manual order answered in time, counted as open,
answered and overdue at chosen moments against figures worked out by hand; on SQLite and PostgreSQL.

The month's automatic orders (each due a day after it is issued):
  case 1 → enforcement, issued 3 Nov 12:05, due 4 Nov 12:05 (answered here 5 Nov 10:00: late);
  case 7 → yuehe level 1, issued 11 Nov 09:05, due 12 Nov 09:05; level 2 issued 12 Nov 09:05, due 13 Nov;
  case 11 → yuehe, issued 15 Nov 09:05, due 16 Nov 09:05.
Added here: a manual order on case 24 (handling in grid g-north), issued 20 Nov 10:00, due 22 Nov
10:00, answered 21 Nov 09:00. Times are Shanghai's.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, true
from sqlalchemy.orm import Session

from cases.models import Case, CaseEvent, SupervisionOrder
from cases.policy import CasePolicy
from cases.supervision_orders import (
    AlreadyAnswered,
    ManualOrder,
    NotYours,
    OrderFilters,
    OrderNotFound,
    SupervisionError,
    answer_order,
    count_states,
    holding_unit,
    issue_order,
    list_orders,
)
from tests.api.two_towns import TOWN_A, make_config
from tests.cases.kpi_month import CST, generate_month

EVERYTHING = true()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=CST)


@pytest.fixture
def district(tmp_path: Path) -> CasePolicy:
    return CasePolicy.load(make_config(tmp_path / "config"))


@pytest.fixture
def month(db: Engine, district: CasePolicy) -> dict[int, int]:
    return generate_month(db, district)


def _order_of(db: Engine, case_id: int) -> int:
    with Session(db) as session:
        found = session.scalar(select(SupervisionOrder.id).where(SupervisionOrder.case_id == case_id))
    assert found is not None
    return found


def _work_the_month(db: Engine, month: dict[int, int]) -> int:
    """Answer case 1's order late and issue and answer the manual order; returns the manual order's id."""
    anyone = {"may_answer": lambda _unit, _kind: True}
    answer_order(
        db, EVERYTHING, _order_of(db, month[1]), "已督促执法局", actor="enf", now=at(5, 10), **anyone
    )
    manual = issue_order(
        db,
        EVERYTHING,
        month[24],
        ManualOrder("群众反映仍未处理", at(22, 10)),
        may_target=lambda kind: kind == "grid",
        actor="wang.wei",
        now=at(20, 10),
    )
    answer_order(db, EVERYTHING, manual, "已清理通道", actor="li.na", now=at(21, 9), **anyone)
    return manual


# (moment, open, answered, overdue), worked out from the orders in the module's docstring.
STATES_OVER_TIME = [
    (at(3, 12), 0, 0, 0),  # nothing issued yet
    (at(3, 13), 1, 0, 0),  # case 1's order, due tomorrow
    (at(4, 13), 0, 0, 1),  # its due time passed unanswered
    (at(5, 11), 0, 1, 0),  # answered, late
    (at(11, 10), 1, 1, 0),  # case 7's first order
    (at(12, 10), 1, 1, 1),  # the first overdue, the escalation open
    (at(15, 10), 1, 1, 2),  # case 11's order; both of case 7's overdue
    (at(20, 11), 1, 1, 3),  # the manual order open
    (at(21, 10), 0, 2, 3),  # and answered in time
    (datetime(2026, 12, 1, tzinfo=CST), 0, 2, 3),
]


def test_states_over_the_month(db: Engine, month: dict[int, int]) -> None:
    _work_the_month(db, month)
    for moment, open_, answered, overdue in STATES_OVER_TIME:
        counts = count_states(db, EVERYTHING, OrderFilters(), moment)
        assert counts == {"open": open_, "answered": answered, "overdue": overdue}, moment
    # Per unit, at the month's end: yuehe's three overdue, enforcement's answered late, the grid's in time.
    end = datetime(2026, 12, 1, tzinfo=CST)
    assert count_states(db, EVERYTHING, OrderFilters(unit=TOWN_A), end) == {
        "open": 0,
        "answered": 0,
        "overdue": 3,
    }
    page = list_orders(db, EVERYTHING, OrderFilters(state="answered"), now=end, limit=10, offset=0)
    assert {(o.unit, o.answered_late, o.kind) for o in page.orders} == {
        ("enforcement", True, "auto"),
        ("g-north", False, "manual"),
    }
    assert page.total == 2 and page.counts == {"open": 0, "answered": 2, "overdue": 3}
    # The issue period and the listing's order: newest first, paged.
    first_half = OrderFilters(issued_from=at(1, 0), issued_to=at(15, 0))
    listed = list_orders(db, EVERYTHING, first_half, now=end, limit=2, offset=0)
    assert listed.total == 3 and [o.case_id for o in listed.orders] == [month[7], month[7]]
    rest = list_orders(db, EVERYTHING, first_half, now=end, limit=2, offset=2)
    assert [o.case_id for o in rest.orders] == [month[1]]
    town_b = list_orders(db, Case.community == "xinhe", OrderFilters(), now=end, limit=10, offset=0)
    assert town_b.total == 0 and town_b.counts == {"open": 0, "answered": 0, "overdue": 0}


def test_a_manual_order_is_noted_in_the_timeline_and_counts_no_breach(
    db: Engine, month: dict[int, int]
) -> None:
    manual = _work_the_month(db, month)
    with Session(db) as session:
        case = session.get(Case, month[24])
        assert case is not None and case.breaches == 0 and holding_unit(case) == "g-north"
        notes = session.execute(
            select(CaseEvent.action, CaseEvent.actor, CaseEvent.note, CaseEvent.data)
            .where(CaseEvent.case_id == month[24], CaseEvent.action.like("supervis%"))
            .order_by(CaseEvent.id)
        ).all()
        order = session.get(SupervisionOrder, manual)
        assert order is not None and order.kind == "manual" and order.issued_by == "wang.wei"
    assert [(a, who, note) for a, who, note, _ in notes] == [
        ("supervise_manual", "wang.wei", "群众反映仍未处理"),
        ("supervision_answered", "li.na", "已清理通道"),
    ]
    assert notes[0].data["order"] == manual and notes[1].data == {
        "order": manual,
        "unit": "g-north",
        "late": False,
    }


def test_bad_orders_and_answers_are_refused_and_change_nothing(db: Engine, month: dict[int, int]) -> None:
    def issue(order: ManualOrder, **kw: object) -> int:
        args: dict[str, object] = {"may_target": lambda _kind: True, "actor": "op", "now": at(20, 10)}
        return issue_order(db, EVERYTHING, month[24], order, **(args | kw))  # type: ignore[arg-type]

    for order, field in (
        (ManualOrder("  ", at(22, 10)), "reason"),
        (ManualOrder("x" * 501, at(22, 10)), "reason"),
        (ManualOrder("why", at(20, 9)), "deadline"),
        (ManualOrder("why", datetime(2026, 11, 22)), "deadline"),  # no offset
        (ManualOrder("why", at(22, 10), "water"), "target_unit"),  # not this case's unit
    ):
        with pytest.raises(SupervisionError) as refused:
            issue(order)
        assert refused.value.field == field and type(refused.value) is SupervisionError
    with pytest.raises(NotYours):
        issue(ManualOrder("why", at(22, 10), TOWN_A), may_target=lambda kind: kind == "grid")
    with pytest.raises(OrderNotFound):
        issue_order(
            db,
            Case.community == "xinhe",  # the case is outside this jurisdiction
            month[24],
            ManualOrder("why", at(22, 10)),
            may_target=lambda _kind: True,
            actor="op",
            now=at(20, 10),
        )
    with Session(db) as session:
        assert session.scalar(select(SupervisionOrder.id).where(SupervisionOrder.kind == "manual")) is None
    order = _order_of(db, month[11])
    no = {"may_answer": lambda _unit, _kind: False}
    yes = {"may_answer": lambda unit, kind: (unit, kind) == (TOWN_A, "town")}
    with pytest.raises(NotYours):
        answer_order(db, EVERYTHING, order, "done", actor="x", now=at(16, 0), **no)
    with pytest.raises(SupervisionError) as empty:
        answer_order(db, EVERYTHING, order, " ", actor="x", now=at(16, 0), **yes)
    assert empty.value.field == "answer"
    answer_order(db, EVERYTHING, order, "done", actor="chen.jie", now=at(16, 0), **yes)
    with pytest.raises(AlreadyAnswered):
        answer_order(db, EVERYTHING, order, "again", actor="chen.jie", now=at(16, 1), **yes)
    with Session(db) as session:
        stored = session.get(SupervisionOrder, order)
        assert stored is not None and (stored.answer, stored.answered_by) == ("done", "chen.jie")
