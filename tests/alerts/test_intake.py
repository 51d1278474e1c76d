"""Alert transitions → cases, on SQLite and on a real PostgreSQL."""

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.checkpoint import encode_gently
from alerts.intake import CaseBook
from alerts.models import Alert, AlertHistory
from alerts.rules import load_rules
from alerts.silences import Matchers, SilenceIn, SilenceStore
from cases.models import Case, CaseEvent, CaseState, Evidence
from cases.policy import CasePolicy
from tests.alerts.scenario import CONFIG, T0, Scenario

NOW = datetime.fromtimestamp(T0 / 1000, UTC)


def setup(db: Engine) -> tuple[Scenario, CaseBook]:
    policy = CasePolicy.load(CONFIG)
    return Scenario(load_rules(CONFIG, policy.categories)), CaseBook(
        db, policy, join_window=timedelta(hours=1)
    )


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def cases(db: Engine) -> list[Case]:
    with Session(db) as session:
        return list(session.scalars(select(Case).order_by(Case.id)))


def actions(db: Engine) -> list[str]:
    with Session(db) as session:
        return [e.action for e in session.scalars(select(CaseEvent).order_by(CaseEvent.id))]


def test_firing_alert_opens_a_case_with_evidence_and_deadline(db: Engine) -> None:
    scenario, book = setup(db)
    assert len(book.apply(scenario.reading(0, "wl-01", level_cm=72), now=at(0))) == 1
    [case] = cases(db)
    assert (case.category, case.grid, case.state, case.source) == (
        "flooding",
        "g-north",
        CaseState.NEW,
        "sensor",
    )
    # Flooding has 4 h; a critical alert makes the case urgent, which halves every limit.
    assert (case.urgency, case.deadline) == ("urgent", at(0) + timedelta(hours=2))
    assert case.title == "积水内涝：竹竿巷1号院 地下车库入口"
    with Session(db) as session:
        evidence = session.scalars(select(Evidence)).one()
        assert (evidence.rule_id, evidence.rule_version, evidence.device) == (
            "flooding-water-level",
            1,
            "wl-01",
        )
        assert evidence.observed == {"level_cm": 72}
        alert = session.scalars(select(Alert)).one()
        assert (alert.status, alert.case_id, alert.category) == ("firing", case.id, "flooding")
    assert actions(db) == ["opened"]


def test_second_device_in_same_grid_joins_the_open_case(db: Engine) -> None:
    scenario, book = setup(db)
    book.apply(scenario.reading(0, "wl-01", level_cm=72), now=at(0))
    book.apply(scenario.reading(600, "wl-02", level_cm=60), now=at(600))
    assert len(cases(db)) == 1
    with Session(db) as session:
        assert [e.device for e in session.scalars(select(Evidence).order_by(Evidence.id))] == [
            "wl-01",
            "wl-02",
        ]
    assert actions(db) == ["opened", "alert_joined"]


def test_other_grid_gets_its_own_case(db: Engine) -> None:
    scenario, book = setup(db)
    book.apply(scenario.reading(0, "wl-01", level_cm=72), now=at(0))
    book.apply(scenario.reading(0, "wl-03", level_cm=72), now=at(0))
    assert [c.grid for c in cases(db)] == ["g-north", "g-middle"]


def test_redelivered_transitions_open_no_second_case(db: Engine) -> None:
    scenario, book = setup(db)
    transitions = scenario.reading(0, "wl-01", level_cm=72)
    book.apply(transitions, now=at(0))
    book.apply(transitions, now=at(1))  # the same batch again after a crash before the ack
    assert len(cases(db)) == 1
    assert actions(db) == ["opened"]


def test_self_recovery_is_tagged_and_the_case_stays_open(db: Engine) -> None:
    scenario, book = setup(db)
    book.apply(scenario.reading(0, "wl-01", level_cm=72), now=at(0))
    book.apply(scenario.reading(60, "wl-01", level_cm=10), now=at(60))
    [case] = cases(db)
    assert case.state == CaseState.NEW
    assert actions(db) == ["opened", "alert_resolved"]
    with Session(db) as session:
        assert session.scalars(
            select(AlertHistory.self_recovered).where(AlertHistory.kind == "resolved")
        ).one()
        note = session.scalars(select(CaseEvent.note).where(CaseEvent.action == "alert_resolved")).one()
        assert "self-recovered" in note
    # Flooding again after the join window: a new case, the old one is not silently reused.
    book.apply(scenario.reading(3 * 3600, "wl-01", level_cm=80), now=at(3 * 3600))
    assert len(cases(db)) == 2


def test_silent_device_leaves_a_note_not_a_resolution(db: Engine) -> None:
    scenario, book = setup(db)
    book.apply(scenario.reading(0, "wl-01", level_cm=72), now=at(0))
    scenario.reading(25, "wl-02", level_cm=1)
    book.apply(scenario.tick(31), now=at(31))
    assert "alert_unknown" in actions(db)
    with Session(db) as session:
        assert session.get(Alert, "flooding-water-level|zhuganxiang|wl-01").status == "unknown"  # type: ignore[union-attr]


def test_silenced_alert_opens_its_case_only_when_the_silence_ends(db: Engine) -> None:
    scenario, book = setup(db)
    silences = SilenceStore(db)
    silence = silences.add(
        SilenceIn(matchers=Matchers(device="wl-01"), starts_at=at(-10), ends_at=at(120), comment="pump test"),
        author="wang.wei",
    )
    scenario.engine.set_silences(silences.current(now=at(0)))
    transitions = scenario.reading(0, "wl-01", level_cm=72)
    assert [(t.kind, t.silenced, t.opens_case) for t in transitions] == [("firing", True, False)]
    book.apply(transitions, now=at(0))
    assert cases(db) == []
    for s in range(5, 120, 5):  # within the silence (a breach after its end opens the case at once)
        scenario.reading(s, "wl-01", level_cm=72)
    assert silences.expire(silence.id, now=at(100))
    scenario.engine.set_silences(silences.current(now=at(125)))
    ended = [t for t in scenario.tick(125) if t.subject.key == "wl-01"]  # others went silent meanwhile
    assert [(t.kind, t.silenced) for t in ended] == [("firing", False)]
    book.apply(ended, now=at(125))
    assert len(cases(db)) == 1


def test_engine_checkpoint_round_trip(db: Engine) -> None:
    scenario, book = setup(db)
    scenario.reading(0, "wl-01", level_cm=72)
    book.save_checkpoint("zhuganxiang", scenario.engine.snapshot())
    book.save_checkpoint("zhuganxiang", scenario.engine.snapshot())  # overwrites, not duplicates
    restored, _ = setup(db)
    restored.engine.restore(book.load_checkpoint("zhuganxiang") or {})
    assert restored.engine.status("flooding-water-level|zhuganxiang|wl-01") == "firing"
    assert restored.reading(5, "wl-01", level_cm=75) == []  # still the same incident


def test_a_checkpoint_encoded_in_pieces_reads_back_as_the_engine_left_it(db: Engine) -> None:
    scenario, book = setup(db)
    for second in range(0, 600, 10):  # a few windows' worth of state, more series than one pause
        scenario.reading(second, "wl-01", level_cm=30 + second % 7)
    snapshot = scenario.engine.snapshot()
    snapshot["series"] |= {f"extra|{n}": {"n": n, "window": [n / 3] * 3} for n in range(450)}
    encoded = encode_gently(snapshot)
    assert json.loads(encoded) == json.loads(json.dumps(snapshot))
    book.save_checkpoint("zhuganxiang", encoded)  # inserted
    assert book.load_checkpoint("zhuganxiang") == json.loads(json.dumps(snapshot))
    book.save_checkpoint("zhuganxiang", encode_gently({"series": {}, "gateways": []}))  # replaced
    assert book.load_checkpoint("zhuganxiang") == {"series": {}, "gateways": []}
    book.save_checkpoint("other", {"series": {}, "gateways": [["c", "g", True]]})  # plain dicts too
    assert book.load_checkpoint("other") == {"series": {}, "gateways": [["c", "g", True]]}
