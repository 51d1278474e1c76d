"""The readings window a case's evidence keeps: captured by the engine when an alert fires, written
once by the case book (SQLite and PostgreSQL), never changed afterwards."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from alerts.engine import WINDOW_MS, WINDOW_READINGS, Transition
from alerts.intake import CaseBook
from alerts.rules import Rule
from cases.models import Case, Evidence, EvidenceImmutable
from cases.policy import CasePolicy
from tests.alerts.scenario import CONFIG, T0, Scenario, rule

WATER = {"type": "water.level@1"}


def flooding(**spec: Any) -> Rule:
    return rule(
        **{"id": "flood", "scope": WATER, "threshold": {"field": "level_cm", "op": ">=", "value": 50}} | spec
    )


def firing(transitions: list[Transition]) -> list[Transition]:
    return [t for t in transitions if t.kind == "firing"]


def ms(seconds: float) -> int:
    return T0 + int(seconds * 1000)


# --- the engine ---------------------------------------------------------------------------------------


def test_firing_carries_the_readings_up_to_the_triggering_one() -> None:
    scenario = Scenario([flooding()])
    for s, level in [(0, 10.0), (60, 20.0), (120, 35.0)]:
        scenario.reading(s + 1, "wl-02", level_cm=1.0)  # another device of the same type: its own ring
        assert scenario.reading(s, "wl-01", level_cm=level) == []
    [fired] = firing(scenario.reading(180, "wl-01", level_cm=72.0))
    assert fired.readings == ((ms(0), 10.0), (ms(60), 20.0), (ms(120), 35.0), (ms(180), 72.0))
    # Only the firing transition carries a window; the resolution after it does not.
    [resolved] = scenario.reading(240, "wl-01", level_cm=5.0)
    assert (resolved.kind, resolved.readings) == ("resolved", ())


def test_window_is_bounded_in_count_and_time() -> None:
    scenario = Scenario([flooding()])
    for i in range(WINDOW_READINGS + 40):
        scenario.reading(i, "wl-01", level_cm=float(i % 7))
    [fired] = firing(scenario.reading(WINDOW_READINGS + 40, "wl-01", level_cm=80.0))
    assert len(fired.readings) == WINDOW_READINGS
    assert fired.readings[-1] == (ms(WINDOW_READINGS + 40), 80.0)
    assert fired.readings[0] == (ms(41), float(41 % 7))

    sparse = Scenario([flooding()])
    minutes = [0, 10, 20, 29, 30, 45]  # 31 min before the firing reading is out; 30 min is in
    for m in minutes:
        sparse.reading(m * 60, "wl-01", level_cm=1.0)
    [fired] = firing(sparse.reading(60 * 60, "wl-01", level_cm=60.0))
    assert [t for t, _ in fired.readings] == [ms(60 * m) for m in (30, 45, 60)]
    assert all(ms(3600) - t <= WINDOW_MS for t, _ in fired.readings)


def test_a_redelivered_reading_appears_once_and_the_window_is_in_event_time_order() -> None:
    scenario = Scenario([flooding()])
    scenario.reading(0, "wl-01", level_cm=1.0)
    scenario.reading(10, "wl-01", level_cm=2.0)
    scenario.reading(10, "wl-01", level_cm=2.0)  # the same point again after a reconnect
    [fired] = firing(scenario.reading(20, "wl-01", level_cm=90.0))
    assert fired.readings == ((ms(0), 1.0), (ms(10), 2.0), (ms(20), 90.0))


def test_a_for_rule_fired_by_the_timer_keeps_the_readings_of_its_pending_time() -> None:
    scenario = Scenario([flooding(for_s=30)])
    scenario.reading(0, "wl-01", level_cm=3.0)
    assert [t.kind for t in scenario.reading(10, "wl-01", level_cm=55.0)] == ["pending"]
    scenario.reading(20, "wl-01", level_cm=58.0)
    [fired] = firing(scenario.tick(41))
    assert fired.ts_ms == ms(10)  # the incident began when the level first crossed
    assert fired.readings == ((ms(0), 3.0), (ms(10), 55.0), (ms(20), 58.0))


def test_rules_without_a_reading_field_carry_no_window() -> None:
    tamper = rule(id="tamper", scope={"type": "camera.events@1"}, event={"kind": "camera.tamper"})
    scenario = Scenario([tamper])
    [fired] = firing(scenario.event(0, "start", kind="camera.tamper"))
    assert fired.readings == ()


def test_the_window_is_not_checkpointed_and_refills_after_a_restart() -> None:
    scenario = Scenario([flooding()])
    for s in range(0, 50, 10):
        scenario.reading(s, "wl-01", level_cm=float(s))
    snapshot = scenario.engine.snapshot()
    for pair in (f"({ms(40)}, 40.0)", f"[{ms(40)}, 40.0]"):
        assert pair not in repr(snapshot)  # no reading (timestamp, value): the ring stayed out
    restored = Scenario([flooding()])
    restored.engine.restore(snapshot)
    restored.reading(50, "wl-01", level_cm=45.0)
    [fired] = firing(restored.reading(60, "wl-01", level_cm=51.0))
    assert fired.readings == ((ms(50), 45.0), (ms(60), 51.0))


# --- the case book: written once, never updated ---------------------------------------------------------


def book_for(db: Engine) -> CaseBook:
    return CaseBook(db, CasePolicy.load(CONFIG), join_window=timedelta(hours=1))


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(ms(seconds) / 1000, UTC)


def evidence_rows(db: Engine) -> list[dict[str, Any]]:
    with Session(db) as session:
        rows = session.scalars(select(Evidence).order_by(Evidence.id))
        return [{c.key: getattr(e, c.key) for c in Evidence.__table__.columns} for e in rows]


def test_evidence_stores_the_window_and_a_join_adds_a_row_without_touching_the_first(db: Engine) -> None:
    scenario, book = Scenario([flooding()]), book_for(db)
    for s in (0, 60, 120):
        scenario.reading(s, "wl-01", level_cm=30.0 + s / 10)
    book.apply(scenario.reading(180, "wl-01", level_cm=72.5), now=at(180))
    [first] = evidence_rows(db)
    assert (first["rule_id"], first["rule_version"], first["device"]) == ("flood", 1, "wl-01")
    assert first["observed"] == {"level_cm": 72.5}
    assert first["readings"] == [[ms(0), 30.0], [ms(60), 36.0], [ms(120), 42.0], [ms(180), 72.5]]

    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db, "before_cursor_execute", capture)
    try:
        scenario.reading(300, "wl-02", level_cm=12.0)
        joined = book.apply(scenario.reading(600, "wl-02", level_cm=66.0), now=at(600))
        # The first alert goes on: later readings of wl-01 change nothing that was written.
        book.apply(scenario.reading(660, "wl-01", level_cm=90.0), now=at(660))
    finally:
        event.remove(db, "before_cursor_execute", capture)
    with Session(db) as session:
        assert joined == [session.scalars(select(Case.id)).one()]
    first_again, second = evidence_rows(db)
    assert first_again == first
    assert (second["device"], second["readings"]) == ("wl-02", [[ms(300), 12.0], [ms(600), 66.0]])
    assert any(s.startswith("INSERT INTO case_evidence") for s in statements)
    assert not any("UPDATE case_evidence" in s or "DELETE FROM case_evidence" in s for s in statements)


def test_a_stored_evidence_row_cannot_be_changed(db: Engine) -> None:
    scenario, book = Scenario([flooding()]), book_for(db)
    scenario.reading(0, "wl-01", level_cm=20.0)
    book.apply(scenario.reading(60, "wl-01", level_cm=70.0), now=at(60))
    before = evidence_rows(db)
    with Session(db) as session:
        row = session.scalars(select(Evidence)).one()
        row.readings = [[ms(60), 1.0]]
        with pytest.raises(EvidenceImmutable, match="cannot be changed"):
            session.commit()
    assert evidence_rows(db) == before


def test_evidence_of_an_event_rule_has_no_window(db: Engine) -> None:
    tamper = rule(id="tamper", scope={"type": "camera.events@1"}, event={"kind": "camera.tamper"})
    scenario, book = Scenario([tamper]), book_for(db)
    book.apply(firing(scenario.event(0, "start", kind="camera.tamper")), now=at(0))
    [row] = evidence_rows(db)
    assert row["readings"] is None and row["observed"]["phase"] == "start"
