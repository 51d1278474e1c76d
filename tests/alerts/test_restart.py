"""A worker restarted after a SIGKILL (no checkpoint, messages redelivered) opens no duplicate case.

Found by tests/e2e/test_scale_out.py with real processes; pinned down here without them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.intake import CaseBook
from alerts.models import Alert
from alerts.rules import load_rules
from alerts.service import reconcile
from cases.models import CaseEvent, Evidence
from cases.policy import CasePolicy
from tests.alerts.scenario import CONFIG, T0, Scenario, rule


def restarted(db: Engine, rules: list[Any]) -> tuple[Scenario, CaseBook]:
    """An engine as a worker builds it after a crash: no checkpoint, reconciled with the case store."""
    scenario = Scenario(rules)
    with Session(db) as session:
        scenario.engine.restore(reconcile(None, session.scalars(select(Alert)).all()))
    policy = CasePolicy.load(CONFIG)
    return scenario, CaseBook(db, policy, join_window=timedelta(hours=1))


def evidence_and_actions(db: Engine) -> tuple[list[str], list[str]]:
    with Session(db) as session:
        evidence = list(session.scalars(select(Evidence.alert_fingerprint)))
        return evidence, list(session.scalars(select(CaseEvent.action).order_by(CaseEvent.id)))


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 / 1000, UTC) + timedelta(seconds=seconds)


def test_a_for_alert_that_fired_after_the_checkpoint_does_not_join_its_case_again(db: Engine) -> None:
    rules = [
        rule(
            id="hot-room",
            scope={"device": "th-0101"},
            threshold={"field": "temperature", "op": ">=", "value": 50, "clear": 45},
            for_s=6,
            category="fire_smoke",
        )
    ]
    first, book = restarted(db, rules)
    book.apply(first.reading(0, "th-0101", temperature=55.0), now=at(0))  # pending
    book.apply(first.reading(7, "th-0101", temperature=55.0), now=at(7))  # firing: case opened
    # SIGKILL before any checkpoint; the restarted engine sees the same incident going on.
    second, book = restarted(db, rules)
    for t in (10, 17, 30):
        book.apply(second.reading(t, "th-0101", temperature=56.0), now=at(t))
    assert evidence_and_actions(db) == (["hot-room|zhuganxiang|th-0101"], ["opened"])
    book.apply(second.reading(31, "th-0101", temperature=30.0), now=at(31))
    assert evidence_and_actions(db)[1] == ["opened", "alert_resolved"]


def test_a_redelivered_breach_older_than_the_resolution_opens_nothing(db: Engine) -> None:
    rules = load_rules(CONFIG, CasePolicy.load(CONFIG).categories)
    first, book = restarted(db, rules)
    book.apply(first.reading(0, "wl-01", level_cm=72.0), now=at(0))
    book.apply(first.reading(5, "wl-01", level_cm=10.0), now=at(5))
    # Killed after that commit but before its PUBACK: the broker sends both readings again.
    second, book = restarted(db, rules)
    for t, level in ((0, 72.0), (5, 10.0)):
        book.apply(second.reading(t, "wl-01", level_cm=level), now=at(6))
    assert evidence_and_actions(db) == (
        ["flooding-water-level|zhuganxiang|wl-01"],
        ["opened", "alert_resolved"],
    )
    # A new breach after the resolution is a new firing of the alert: it joins the open case.
    book.apply(second.reading(60, "wl-01", level_cm=80.0), now=at(60))
    assert evidence_and_actions(db)[1] == ["opened", "alert_resolved", "alert_joined"]
