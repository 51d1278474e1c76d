"""Case categories stored beside config (``cases.category_store``), on SQLite and PostgreSQL: another
process's policy follows them through one cheap poll, a store error keeps the last good set, a row
that no longer makes a category is skipped, and the organisation lists a category under its department."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, text, update
from sqlalchemy.orm import Session

from cases.categories import Category
from cases.category_store import CategoryChange, CategoryError, CategoryStore, UnknownCategory
from cases.models import CategoryOverride
from cases.policy import CasePolicy
from tests.alerts.scenario import CONFIG

CO2 = Category(
    code="air_co2_high", name_zh="二氧化碳超标", name_en="CO₂ too high", sla_hours=12, urgent_sla_hours=3
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def statements(db: Engine) -> Iterator[list[str]]:
    """The SQL statements ``db`` runs inside the block."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db, "before_cursor_execute", count)


def departments_of(policy: CasePolicy) -> dict[str, list[str]]:
    return {d.id: list(d.categories) for d in policy.organisation.departments}


def test_another_process_follows_through_one_cheap_poll(db: Engine) -> None:
    writer = CasePolicy.load(CONFIG, db)
    clock = FakeClock()
    reader = CategoryStore(db, CasePolicy.load(CONFIG).categories, poll_s=1.0, clock=clock)
    assert "air_co2_high" not in reader.current()
    assert writer.category_store is not None
    writer.category_store.create(CO2, department="housing", departments=departments_of(writer), author="op")
    assert "air_co2_high" in writer.categories  # the writer sees its own change at once
    with statements(db) as seen:
        assert "air_co2_high" not in reader.current()  # not before its poll is due
    assert seen == []
    clock.now = 1.0
    with statements(db) as seen:
        assert reader.current()["air_co2_high"] == CO2
    assert len(seen) == 2  # the revision, then the rows because it moved
    clock.now = 2.0
    with statements(db) as seen:
        assert reader.current()["air_co2_high"] == CO2
    assert len(seen) == 1, seen  # nothing changed: one aggregate query, no rows read


def test_a_store_error_keeps_the_last_good_set(db: Engine) -> None:
    clock = FakeClock()
    policy = CasePolicy.load(CONFIG, db)
    assert policy.category_store is not None
    store = CategoryStore(db, policy.configured_categories, poll_s=1.0, clock=clock)
    policy.category_store.create(CO2, department="housing", departments=departments_of(policy), author="op")
    assert "air_co2_high" in store.current()
    with db.begin() as conn:
        conn.execute(text("DROP TABLE case_categories"))
    clock.now = 5.0
    kept = store.current()
    assert kept["air_co2_high"] == CO2 and "flooding" in kept


def test_a_stored_row_that_is_no_category_is_skipped_and_the_rest_used(db: Engine) -> None:
    policy = CasePolicy.load(CONFIG, db)
    assert policy.category_store is not None
    store = policy.category_store
    store.create(CO2, department="housing", departments=departments_of(policy), author="op")
    other = CO2.model_copy(update={"code": "noise_high", "name_en": "Noise"})
    store.create(other, department="housing", departments=departments_of(policy), author="op")
    with Session(db) as session, session.begin():  # a hand edit of the table
        session.execute(
            update(CategoryOverride)
            .where(CategoryOverride.code == "noise_high")
            .values(sla_hours={"normal": 1}, revision=CategoryOverride.revision + 1)
        )
    store.invalidate()
    categories = policy.categories
    assert "noise_high" not in categories and categories["air_co2_high"] == CO2


def test_a_category_is_listed_under_its_department_alone(db: Engine) -> None:
    policy = CasePolicy.load(CONFIG, db)
    assert policy.category_store is not None
    store = policy.category_store
    store.create(CO2, department="housing", departments=departments_of(policy), author="op")
    assert "air_co2_high" in departments_of(policy)["housing"]
    moved, department = store.change(
        "flooding", CategoryChange(department="emergency"), departments=departments_of(policy), author="op"
    )
    assert department == "emergency" and moved.sla_hours == 4
    assert "flooding" in departments_of(policy)["emergency"]
    assert "flooding" not in departments_of(policy)["water"]
    assert policy.configured.department("water").categories == ["flooding"]  # type: ignore[union-attr]


def test_changes_are_checked_before_anything_is_stored(db: Engine) -> None:
    policy = CasePolicy.load(CONFIG, db)
    assert policy.category_store is not None
    store = policy.category_store
    departments = departments_of(policy)
    with pytest.raises(UnknownCategory, match="no category 'ghost'"):
        store.change("ghost", CategoryChange(name_en="Ghost"), departments=departments, author="op")
    with pytest.raises(CategoryError, match=r"sla_hours\.urgent: 0 is not a time limit"):
        store.change(
            "flooding", CategoryChange(sla_hours={"urgent": 0}), departments=departments, author="op"
        )
    with pytest.raises(CategoryError, match="department: unknown department 'traffic'"):
        store.create(CO2, department="traffic", departments=departments, author="op")
    with Session(db) as session:
        assert session.query(CategoryOverride).count() == 0


def test_an_sla_change_gives_later_cases_the_new_deadline_only(db: Engine) -> None:
    policy = CasePolicy.load(CONFIG, db)
    assert policy.category_store is not None
    policy.category_store.create(CO2, department="housing", departments=departments_of(policy), author="op")
    opened = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    # CO2 runs on the working-time clock (the default): compare the working time each deadline allows.
    before = policy.completion_deadline("air_co2_high", opened, "urgent")
    policy.category_store.change(
        "air_co2_high",
        CategoryChange(sla_hours={"urgent": 1}),
        departments=departments_of(policy),
        author="op",
    )
    after = policy.completion_deadline("air_co2_high", opened, "urgent")
    assert policy.calendar.between(opened, before).total_seconds() == 3 * 3600
    assert policy.calendar.between(opened, after).total_seconds() == 3600
