"""Whole case lives on a frozen clock, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.intake import CaseBook, alerts_clear
from alerts.rules import load_rules
from cases.actions import CaseFlow, CaseNotFound, Report, VersionConflict
from cases.autocheck import AutoCheck
from cases.kpis import compute_kpis
from cases.models import Case, CaseEvent, CaseState, SupervisionOrder
from cases.policy import CasePolicy
from cases.sla import SlaMonitor
from cases.workflow import IllegalTransition, InvalidAction
from tests.alerts.scenario import CONFIG, Scenario

CST = ZoneInfo("Asia/Shanghai")
POLICY = CasePolicy.load(CONFIG)
# Wednesday 30 September 2026, 17:55 — five minutes before the National Day holiday (1–7 October).
EVE = datetime(2026, 9, 30, 17, 55, tzinfo=CST)


def report(flow: CaseFlow, now: datetime, category: str = "fire_lane_blocked", grid: str = "g-north") -> int:
    case_id, merged = flow.report(
        Report(
            "zhuganxiang", grid, category, "车辆占用消防通道", "3号楼 消防通道", reporter_phone="13800000000"
        ),
        actor="resident",
        now=now,
    )
    assert merged is None
    return case_id


def case(db: Engine, case_id: int) -> Case:
    with Session(db) as session:
        found = session.get(Case, case_id)
        assert found is not None
        return found


def events(db: Engine, case_id: int) -> list[tuple[str, str | None]]:
    with Session(db) as session:
        rows = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id))
        return [(e.action, e.to_state) for e in rows]


def walk(
    flow: CaseFlow,
    case_id: int,
    steps: list[tuple[str, dict[str, object]]],
    start: datetime,
    step: timedelta = timedelta(minutes=10),
) -> datetime:
    now = start
    for action, params in steps:
        now += step
        flow.act(case_id, action, actor="wang.wei", params=params, now=now)
    return now


HAPPY = [
    ("accept", {}),
    ("verify", {}),
    ("assign", {"assignee": "li.na"}),
    ("sign", {}),
    ("feedback", {}),
    ("check", {}),
    ("pass", {}),
]


def test_working_time_deadline_skips_the_holiday(db: Engine) -> None:
    flow = CaseFlow(db, POLICY)
    opened = case(db, report(flow, EVE))
    # 8 working hours: none left on the 30th, 7.5 h on Thursday 8 October, 0.5 h on Friday the 9th.
    assert opened.deadline == datetime(2026, 10, 9, 9, 0, tzinfo=CST)
    assert opened.stage == "accept" and opened.stage_due == datetime(2026, 10, 8, 9, 0, tzinfo=CST)
    assert opened.owner_town == "yuehe"
    # Urgent categories run on a continuous clock: flooding is due 4 h later, holiday or not.
    flood = case(db, report(flow, EVE, category="flooding"))
    assert flood.deadline == EVE + timedelta(hours=4)


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


def test_extension_counts_as_on_time_and_suspension_pauses_the_clock(db: Engine) -> None:
    flow = CaseFlow(db, POLICY)
    start = datetime(2026, 10, 12, 9, 0, tzinfo=CST)  # a Monday
    extended, suspended = report(flow, start), report(flow, start, grid="g-south")
    for case_id in (extended, suspended):
        walk(flow, case_id, HAPPY[:4], start)
    base = case(db, extended).deadline
    flow.act(
        extended, "extend", actor="zhang.san", params={"hours": 8, "approved_by": "town-head"}, now=start
    )
    assert case(db, extended).deadline == POLICY.calendar.add(base, timedelta(hours=8))
    # Suspended Monday 10:00, resumed Wednesday 10:00: the remaining working time is kept, not spent.
    remaining = POLICY.calendar.between(start + timedelta(hours=1), case(db, suspended).deadline)
    flow.act(
        suspended,
        "suspend",
        actor="zhang.san",
        params={"reason": "等待物业", "approved_by": "town-head"},
        now=start + timedelta(hours=1),
    )
    flow.act(suspended, "resume", actor="zhang.san", now=start + timedelta(days=2, hours=1))
    assert case(db, suspended).deadline == POLICY.calendar.add(start + timedelta(days=2, hours=1), remaining)
    # Completed after the original deadline, before the extended one: on time.
    late = base + timedelta(hours=1)
    walk(flow, extended, HAPPY[4:], late - timedelta(minutes=30))
    kpis = compute_kpis(
        db,
        POLICY,
        level="district",
        scope="rencheng",
        start=start - timedelta(days=1),
        end=start + timedelta(days=1),
    )
    assert (kpis.all_cases.completed, kpis.all_cases.on_time_rate, kpis.extension_rate) == (1, 1.0, 0.5)


def test_breach_issues_a_supervision_order_and_a_second_breach_escalates(db: Engine) -> None:
    flow, monitor = CaseFlow(db, POLICY), SlaMonitor(db, POLICY)
    opened = datetime(2026, 10, 12, 9, 0, tzinfo=CST)
    case_id = report(flow, opened)  # accept within 30 working minutes
    assert monitor.scan(opened + timedelta(minutes=23)) == 0
    assert monitor.scan(opened + timedelta(minutes=25)) == 1  # 80 % used: warning
    assert monitor.scan(opened + timedelta(minutes=31)) == 1  # breach: 督办 level 1
    assert monitor.scan(opened + timedelta(minutes=40)) == 0  # one order per stage
    walk(
        flow,
        case_id,
        [("accept", {}), ("verify", {}), ("assign", {"assignee": "li.na"})],
        opened + timedelta(minutes=40),
    )
    assigned = case(db, case_id)
    assert assigned.stage == "sign" and assigned.stage_due is not None
    monitor.scan(assigned.stage_due + timedelta(minutes=1))  # not signed for in time: escalates
    with Session(db) as session:
        orders = [
            (o.stage, o.level, o.addressed_to, o.unit)
            for o in session.scalars(select(SupervisionOrder).order_by(SupervisionOrder.id))
        ]
    assert orders == [("accept", 1, "yuehe", "yuehe"), ("sign", 2, "chen.jie", "yuehe")]  # the town's leader
    assert [a for a, _ in events(db, case_id)].count("supervise") == 2


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


def test_reported_case_merges_into_the_sensor_case_and_recurrence_reopens(db: Engine) -> None:
    scenario = Scenario(load_rules(CONFIG, POLICY.categories))
    book, flow = CaseBook(db, POLICY, timedelta(hours=1)), CaseFlow(db, POLICY)
    now = datetime.fromtimestamp(scenario.clock.now_ms / 1000, CST)
    [sensor_case] = book.apply(scenario.reading(0, "wl-01", level_cm=72), now=now)
    reported, merged_into = flow.report(
        Report("zhuganxiang", "g-north", "flooding", "地库进水了", "1号院"),
        actor="resident",
        now=now + timedelta(minutes=5),
    )
    assert merged_into == sensor_case
    assert case(db, reported).state == CaseState.MERGED and case(db, reported).merged_into == sensor_case
    assert ("report_merged", "NEW") in events(db, sensor_case)
    # Worked and closed; the water drains and comes back two days later: the same case reopens (返工).
    walk(flow, sensor_case, HAPPY, now + timedelta(minutes=5))
    book.apply(scenario.reading(5, "wl-01", level_cm=10), now=now + timedelta(hours=2))
    later = now + timedelta(days=2)
    assert book.apply(scenario.reading(172_800, "wl-01", level_cm=80), now=later) == [sensor_case]
    assert case(db, sensor_case).state == CaseState.REOPENED
    kpis = compute_kpis(db, POLICY, level="grid", scope="g-north", start=now - timedelta(hours=1), end=later)
    assert kpis.rework_rate == 1.0


def test_two_operators_at_once_one_wins_the_other_gets_a_conflict(db: Engine) -> None:
    flow = CaseFlow(db, POLICY)
    case_id = report(flow, EVE)
    version = case(db, case_id).version
    barrier, outcomes = threading.Barrier(2), []

    def act(action: str, params: dict[str, object]) -> None:
        barrier.wait()
        try:
            flow.act(case_id, action, actor=action, expected_version=version, params=params)
            outcomes.append(("ok", action))
        except VersionConflict:
            outcomes.append(("conflict", action))

    threads = [
        threading.Thread(target=act, args=a) for a in (("accept", {}), ("void", {"reason": "duplicate"}))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(kind for kind, _ in outcomes) == ["conflict", "ok"]
    winner = next(action for kind, action in outcomes if kind == "ok")
    assert [a for a, _ in events(db, case_id)] == ["reported", winner]
    with pytest.raises(VersionConflict):
        flow.act(case_id, "verify", actor="late", expected_version=version)


def test_kpis_as_the_seed_reports_them(db: Engine) -> None:
    flow = CaseFlow(db, POLICY)
    start = datetime(2026, 10, 12, 9, 0, tzinfo=CST)
    outcomes = ["satisfied", "satisfied", "satisfied", "unsatisfied"]
    for i, outcome in enumerate(outcomes):
        case_id = report(
            flow, start + timedelta(minutes=i), grid=["g-north", "g-middle", "g-south", "g-north"][i]
        )
        flow.act(case_id, "accept", actor="op", now=start + timedelta(minutes=10 + i))
        flow.act(case_id, "verify", actor="op", now=start + timedelta(minutes=11 + i))
        flow.act(
            case_id, "assign", actor="op", params={"assignee": "li.na"}, now=start + timedelta(minutes=12 + i)
        )
        flow.act(case_id, "sign", actor="op", now=start + timedelta(minutes=13 + i))
        if i < 2:
            flow.act(
                case_id,
                "call_up",
                actor="op",
                params={"department": "enforcement", "approved_by": "head"},
                now=start + timedelta(minutes=20 + i),
            )
            flow.act(case_id, "call_resolve", actor="dept", now=start + timedelta(minutes=50 + i))
        else:
            flow.act(case_id, "feedback", actor="op", now=start + timedelta(minutes=50 + i))
        flow.act(case_id, "check", actor="op", now=start + timedelta(minutes=60 + i))
        done = start + timedelta(days=3 if i == 1 else 0, minutes=70 + i)  # case 2 finishes late
        flow.act(case_id, "pass", actor="op", now=done)
        flow.act(case_id, "visit", actor="op", params={"outcome": outcome}, now=done + timedelta(hours=1))
    voided = report(flow, start + timedelta(minutes=9), grid="g-middle")
    flow.act(voided, "void", actor="op", params={"reason": "duplicate"}, now=start + timedelta(minutes=15))
    kpis = compute_kpis(
        db, POLICY, level="community", scope="zhuganxiang", start=start, end=start + timedelta(days=1)
    )
    assert kpis.calls == 2
    assert (kpis.all_cases.cases, kpis.all_cases.completed, kpis.all_cases.completion_rate) == (4, 4, 1.0)
    assert kpis.all_cases.on_time_rate == 0.75 and kpis.all_cases.satisfaction_rate == 0.75
    assert (kpis.called_cases.cases, kpis.called_cases.on_time_rate, kpis.called_cases.satisfaction_rate) == (
        2,
        0.5,
        1.0,
    )
    assert kpis.rework_rate == 0.25 and kpis.void_rate == 0.2
    grid = compute_kpis(db, POLICY, level="grid", scope="g-north", start=start, end=start + timedelta(days=1))
    assert grid.all_cases.cases == 2


def test_feedback_passes_its_check_automatically_once_the_sensor_stays_clear(db: Engine) -> None:
    scenario = Scenario(load_rules(CONFIG, POLICY.categories))
    book, flow = CaseBook(db, POLICY, timedelta(hours=1)), CaseFlow(db, POLICY)
    now = datetime.fromtimestamp(scenario.clock.now_ms / 1000, CST)
    [case_id] = book.apply(scenario.reading(0, "wl-01", level_cm=72), now=now)
    walk(flow, case_id, HAPPY[:5], now)  # worked up to FEEDBACK, alert still firing
    check = AutoCheck(db, POLICY, alerts_clear, settle=timedelta(minutes=30))
    assert check.scan(now + timedelta(hours=1)) == []  # still flooded: a person must check
    book.apply(scenario.reading(3600, "wl-01", level_cm=5), now=now + timedelta(hours=1))
    assert check.scan(now + timedelta(hours=1, minutes=20)) == []  # clear, but not for long enough
    assert check.scan(now + timedelta(hours=1, minutes=31)) == [case_id]
    closed = case(db, case_id)
    assert closed.state == CaseState.CLOSED
    assert events(db, case_id)[-2:] == [("check", "CHECKING"), ("pass", "CLOSED")]


def test_assign_without_a_name_goes_to_the_duty_roster_and_its_backup(db: Engine) -> None:
    from cases.organisation import Roster
    from cases.rosters import set_roster

    flow = CaseFlow(db, POLICY)
    start = datetime(2026, 10, 12, 9, 0, tzinfo=CST)
    first = report(flow, start)
    walk(flow, first, [("accept", {}), ("verify", {}), ("assign", {})], start)
    assert case(db, first).assignee == "li.na"  # g-north's primary
    set_roster(
        db,
        POLICY.organisation,
        Roster(unit="g-north", primary="li.na", backup="zhao.lei", away=["li.na"]),
        author="chen.jie",
    )
    second = report(flow, start, category="gas_leak")
    walk(flow, second, [("accept", {}), ("verify", {}), ("assign", {})], start)
    assert case(db, second).assignee == "zhao.lei"  # the primary is away: the backup
    with pytest.raises(ValueError, match="not among people: nobody"):
        set_roster(
            db, POLICY.organisation, Roster(unit="g-north", primary="nobody", backup="zhao.lei"), author="x"
        )


def test_urgency_set_when_verifying_shortens_the_deadline(db: Engine) -> None:
    flow = CaseFlow(db, POLICY)
    start = datetime(2026, 10, 12, 9, 0, tzinfo=CST)  # Monday 09:00; office hours 08:30-12:00, 13:30-17:30
    case_id = report(flow, start)
    assert case(db, case_id).deadline == datetime(2026, 10, 13, 9, 30, tzinfo=CST)  # 8 working hours
    flow.act(case_id, "accept", actor="op", now=start)
    flow.act(case_id, "verify", actor="op", params={"urgency": "urgent"}, now=start)
    assert case(db, case_id).deadline == datetime(2026, 10, 12, 14, 30, tzinfo=CST)  # 4 working hours
    other = report(flow, start, grid="g-south")
    flow.act(other, "accept", actor="op", now=start)
    with pytest.raises(InvalidAction, match="urgency"):
        flow.act(other, "verify", actor="op", params={"urgency": "whenever"}, now=start)
