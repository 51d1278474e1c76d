"""Alert transitions → cases, on SQLite and on a real PostgreSQL."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.casebook import CaseBook, create_schema
from alerts.engine import AlertEngine
from alerts.models import Case, CaseEvent, CaseState, Evidence
from alerts.rules import load_categories, load_rules
from contract import Reading
from contract.catalog import load_catalog
from yiwang.common.db import make_engine

CONFIG = Path(__file__).resolve().parents[2] / "config"
T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Engine:
    engine = make_engine(database_url)
    create_schema(engine)
    yield engine  # type: ignore[misc]
    engine.dispose()


def setup(db: Engine) -> tuple[AlertEngine, CaseBook]:
    categories = load_categories(CONFIG)
    book = CaseBook(db, categories, join_window=timedelta(hours=1))
    return AlertEngine(load_rules(CONFIG, categories), load_catalog(CONFIG), book.firing_fingerprints()), book


def reading(device: str, value: float, at: datetime) -> Reading:
    return Reading(device=device, ts=int(at.timestamp() * 1000), values={"level_cm": value})


def cases(db: Engine) -> list[Case]:
    with Session(db) as session:
        return list(session.scalars(select(Case).order_by(Case.id)))


def test_firing_alert_opens_a_case_with_evidence_and_deadline(db: Engine) -> None:
    engine, book = setup(db)
    opened = book.apply(engine.on_reading("zhuganxiang", "gw-01", reading("wl-01", 72, T0)), now=T0)
    assert len(opened) == 1
    [case] = cases(db)
    assert (case.category, case.grid, case.state, case.source) == (
        "flooding",
        "g-north",
        CaseState.NEW,
        "sensor",
    )
    assert case.deadline == T0 + timedelta(hours=4)
    assert "积水内涝" in case.title
    with Session(db) as session:
        evidence = session.scalars(select(Evidence)).one()
        assert (evidence.rule_id, evidence.rule_version, evidence.device) == (
            "flooding-water-level",
            1,
            "wl-01",
        )
        assert evidence.observed == {"level_cm": 72}
        events = session.scalars(select(CaseEvent)).all()
        assert [(e.action, e.actor) for e in events] == [("opened", "system:alerts")]


def test_second_device_in_same_grid_joins_the_open_case(db: Engine) -> None:
    engine, book = setup(db)
    book.apply(engine.on_reading("zhuganxiang", "gw-01", reading("wl-01", 72, T0)), now=T0)
    later = T0 + timedelta(minutes=10)
    book.apply(engine.on_reading("zhuganxiang", "gw-01", reading("wl-02", 60, later)), now=later)
    assert len(cases(db)) == 1
    with Session(db) as session:
        assert [e.device for e in session.scalars(select(Evidence).order_by(Evidence.id))] == [
            "wl-01",
            "wl-02",
        ]


def test_other_grid_gets_its_own_case(db: Engine) -> None:
    engine, book = setup(db)
    book.apply(engine.on_reading("zhuganxiang", "gw-01", reading("wl-01", 72, T0)), now=T0)
    book.apply(engine.on_reading("zhuganxiang", "gw-02", reading("wl-03", 72, T0)), now=T0)
    assert [c.grid for c in cases(db)] == ["g-north", "g-middle"]


def test_redelivered_reading_after_a_crash_opens_no_second_case(db: Engine) -> None:
    engine, book = setup(db)
    book.apply(engine.on_reading("zhuganxiang", "gw-01", reading("wl-01", 72, T0)), now=T0)
    restarted, _ = setup(db)  # a new process: firing alerts reloaded from the database
    assert restarted.on_reading("zhuganxiang", "gw-01", reading("wl-01", 72, T0)) == []
    assert len(cases(db)) == 1


def test_resolution_is_recorded_but_the_case_stays_open(db: Engine) -> None:
    engine, book = setup(db)
    book.apply(engine.on_reading("zhuganxiang", "gw-01", reading("wl-01", 72, T0)), now=T0)
    later = T0 + timedelta(minutes=30)
    book.apply(engine.on_reading("zhuganxiang", "gw-01", reading("wl-01", 10, later)), now=later)
    [case] = cases(db)
    assert case.state == CaseState.NEW
    with Session(db) as session:
        actions = [e.action for e in session.scalars(select(CaseEvent).order_by(CaseEvent.id))]
    assert actions == ["opened", "alert_resolved"]
    # Flooding again after the join window: a new case, the old one is not silently reused.
    much_later = T0 + timedelta(hours=3)
    book.apply(engine.on_reading("zhuganxiang", "gw-01", reading("wl-01", 80, much_later)), now=much_later)
    assert len(cases(db)) == 2
