"""核查 by the system: a sensor case in FEEDBACK passes once its alerts stay clear; on SQLite and on a
real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from alerts.intake import CaseBook, alerts_clear
from alerts.rules import load_rules
from cases.actions import CaseFlow
from cases.autocheck import AutoCheck
from cases.models import CaseState
from tests.alerts.scenario import CONFIG, Scenario
from tests.cases.helpers import CST, HAPPY, POLICY, case, events, walk


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
