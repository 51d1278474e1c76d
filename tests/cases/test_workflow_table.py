"""The state machine as people walk it: which action may follow which, what each needs, and what
it leaves in the append-only log; on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from cases.actions import CaseFlow, CaseNotFound
from cases.kpis import compute_kpis
from cases.models import CaseState
from cases.workflow import IllegalTransition, InvalidAction
from tests.cases.helpers import CST, EVE, HAPPY, POLICY, case, events, report, walk


def test_a_whole_life_is_an_append_only_log(db: Engine) -> None:
    flow = CaseFlow(db, POLICY)
    case_id = report(flow, EVE)
    done = walk(
        flow, case_id, [*HAPPY, ("visit", {"outcome": "satisfied"})], datetime(2026, 10, 8, 9, 0, tzinfo=CST)
    )
    closed = case(db, case_id)
    assert closed.state == CaseState.RETURN_VISIT
    assert closed.closed_at == done - timedelta(minutes=10)
    assert [a for a, _ in events(db, case_id)] == ["reported", *[a for a, _ in HAPPY], "visit"]


@pytest.mark.parametrize(
    ("action", "params", "error"),
    [
        ("pass", {}, IllegalTransition),
        ("sign", {}, IllegalTransition),
        ("assign", {"assignee": "li.na"}, IllegalTransition),
        ("void", {"reason": "bored"}, InvalidAction),
        ("teleport", {}, InvalidAction),
    ],
)
def test_illegal_or_incomplete_actions_are_refused_and_change_nothing(
    db: Engine, action: str, params: dict[str, object], error: type[Exception]
) -> None:
    flow = CaseFlow(db, POLICY)
    case_id = report(flow, EVE)
    with pytest.raises(error):
        flow.act(case_id, action, actor="wang.wei", params=params, now=EVE)
    assert case(db, case_id).state == CaseState.NEW
    assert events(db, case_id) == [("reported", "NEW")]
    with pytest.raises(CaseNotFound):
        flow.act(999, "accept", actor="wang.wei")


def test_town_calls_the_district_which_returns_it_with_reasons(db: Engine) -> None:
    flow = CaseFlow(db, POLICY)
    start = datetime(2026, 10, 12, 9, 0, tzinfo=CST)
    case_id = report(flow, start)
    now = walk(flow, case_id, HAPPY[:4], start)
    with pytest.raises(InvalidAction, match="approved_by"):
        flow.act(case_id, "call_up", actor="zhang.san", params={"department": "enforcement"}, now=now)
    flow.act(
        case_id,
        "call_up",
        actor="zhang.san",
        params={"department": "enforcement", "approved_by": "town-head"},
        now=now,
    )
    called = case(db, case_id)
    assert (called.state, called.department, called.stage, called.owner_town) == (
        "CALLED_UP",
        "enforcement",
        "respond",
        "yuehe",
    )
    flow.act(case_id, "respond", actor="dept.enforcement", now=now + timedelta(minutes=30))
    assert case(db, case_id).stage == "resolve_call"
    flow.act(
        case_id,
        "call_return",
        actor="dept.enforcement",
        params={"reason": "属物业管理范围"},
        now=now + timedelta(hours=1),
    )
    flow.act(case_id, "rate_call", actor="zhang.san", params={"rating": 2}, now=now + timedelta(hours=2))
    back = case(db, case_id)
    assert (back.state, back.owner_town) == ("HANDLING", "yuehe")
    kpis = compute_kpis(db, POLICY, level="town", scope="yuehe", start=start, end=start + timedelta(days=1))
    assert kpis.calls == 1 and kpis.called_cases.cases == 1 and kpis.called_cases.completed == 0
