"""Case categories as they stand now: ``config/categories.yaml`` overlaid with the categories created or
changed through the API (table ``case_categories``).

Config is the baseline; a stored row adds a category or replaces a configured one whole. Every process
keeps the merged set and, when it is read, checks one cheap number (row count and the sum of the rows'
revisions) at most every ``poll_s``: a category created by one process is used by the others within
seconds, without a restart. A store that does not answer keeps the last good set.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from cases.categories import URGENCIES, Category
from cases.models import CategoryOverride

log = logging.getLogger(__name__)
MAX_SLA_HOURS = 24 * 366  # a year: anything longer is a typo, not a time limit


class CategoryError(ValueError):
    """A category that would not work: no SLA for an urgency, an unknown department... (HTTP 422)."""


class CategoryExists(CategoryError):
    """The id is taken, by config or by an earlier create (HTTP 409)."""


class UnknownCategory(LookupError):
    """No category of that id (HTTP 404)."""


@dataclass(frozen=True)
class CategoryChange:
    """What a change sets; None leaves it. ``sla_hours`` may name only the urgencies that change."""

    name_zh: str | None = None
    name_en: str | None = None
    sla_hours: Mapping[str, float] | None = None
    department: str | None = None
    clock: str | None = None


def check_sla(hours: Mapping[str, float] | None, *, partial: bool = False) -> dict[str, float]:
    """The SLA per urgency, checked: every urgency (unless ``partial``), each a positive number of hours."""
    levels = ", ".join(URGENCIES)
    if hours is None:
        raise CategoryError(
            f"sla_hours: required: a category needs a time limit in hours for every urgency ({levels}), "
            'e.g. {"normal": 24, "urgent": 4}'
        )
    unknown = sorted(set(hours) - set(URGENCIES))
    if unknown:
        raise CategoryError(
            f"sla_hours: unknown urgency {', '.join(map(repr, unknown))}; the urgencies are {levels}"
        )
    missing = [u for u in URGENCIES if u not in hours]
    if missing and not partial:
        raise CategoryError(
            f"sla_hours.{missing[0]}: missing: every urgency ({levels}) needs a positive number of hours"
        )
    for urgency, value in hours.items():
        if not (math.isfinite(value) and 0 < value <= MAX_SLA_HOURS):
            raise CategoryError(
                f"sla_hours.{urgency}: {value!r} is not a time limit: give a positive number of hours, "
                f"at most {MAX_SLA_HOURS}"
            )
    return {u: float(hours[u]) for u in URGENCIES if u in hours}


def check_department(department: str | None, departments: Collection[str]) -> str:
    if department is None:
        raise CategoryError("department: required: the district department the category's cases go to")
    if department not in departments:
        raise CategoryError(
            f"department: unknown department {department!r}; known: {', '.join(sorted(departments))}"
        )
    return department


def category_of(row: CategoryOverride, base: Category | None = None) -> Category:
    """The category a row stands for; ``base``: the configured one it replaces (keeps its urgent factor)."""
    extra = {"urgent_factor": base.urgent_factor} if base is not None else {}
    return Category(
        code=row.code,
        name_zh=row.name_zh,
        name_en=row.name_en,
        sla_hours=row.sla_hours["normal"],
        urgent_sla_hours=row.sla_hours["urgent"],
        accept_minutes=row.accept_minutes,
        sign_minutes=row.sign_minutes,
        clock=row.clock,  # a Literal: validated by the model
        **extra,
    )


def stored_departments(session: Session) -> dict[str, str]:
    """Category → the department its cases go to, for every stored category that names one."""
    rows = session.execute(select(CategoryOverride.code, CategoryOverride.department))
    return {code: department for code, department in rows if department}


def department_of(code: str, departments: Mapping[str, Collection[str]]) -> str | None:
    """The (first) department whose categories include ``code``."""
    return next((d for d, categories in departments.items() if code in categories), None)


class CategoryStore:
    """The categories as they stand now (config + stored rows), and changes to them."""

    def __init__(
        self,
        db: Engine,
        configured: Mapping[str, Category],
        poll_s: float = 1.0,
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db, self._configured, self._poll_s = db, dict(configured), poll_s
        self._on_change, self._clock = on_change, clock
        self._lock = threading.Lock()
        self._merged: dict[str, Category] = dict(configured)  # replaced whole, never mutated
        self._seen: tuple[int, int] | None = None
        self._next_check = -math.inf

    @property
    def configured(self) -> dict[str, Category]:
        return self._configured

    def current(self) -> dict[str, Category]:
        """The merged set; checks the store's revision when ``poll_s`` has passed since the last check.

        One reader checks at a time; the others meanwhile use the set they have.
        """
        if self._clock() >= self._next_check and self._lock.acquire(blocking=False):
            try:
                self._refresh()
            finally:
                self._lock.release()
        return self._merged

    def invalidate(self) -> None:
        self._next_check = -math.inf

    def _refresh(self) -> None:
        self._next_check = self._clock() + self._poll_s
        try:
            with Session(self._db) as session:
                count, total = session.execute(
                    select(func.count(), func.coalesce(func.sum(CategoryOverride.revision), 0))
                ).one()
                seen = (int(count), int(total))
                if seen == self._seen:
                    return
                rows = session.scalars(select(CategoryOverride)).all()
        except SQLAlchemyError as err:
            log.warning("case categories: the store did not answer (%s); keeping the last good set", err)
            return
        merged = dict(self._configured)
        for row in rows:
            try:
                merged[row.code] = category_of(row, self._configured.get(row.code))
            except (ValidationError, KeyError, TypeError) as err:
                # Only a hand edit of the table gets here: every stored change was checked first.
                log.error("case category %s in the store is not valid (%s); skipped", row.code, err)
        self._merged, self._seen = merged, seen

    def create(
        self, category: Category, *, department: str, departments: Collection[str], author: str
    ) -> Category:
        """Store a new category; refused when its id is taken or its department unknown."""
        check_sla(category.sla_hours_by_urgency())
        check_department(department, departments)
        if category.code in self._configured:
            raise CategoryExists(f"category {category.code!r} exists (in config/categories.yaml): change it")
        row = CategoryOverride(
            code=category.code,
            name_zh=category.name_zh,
            name_en=category.name_en,
            sla_hours=category.sla_hours_by_urgency(),
            accept_minutes=category.accept_minutes,
            sign_minutes=category.sign_minutes,
            clock=category.clock,
            department=department,
            revision=1,
            updated_by=author,
            updated_at=datetime.now(UTC),
        )
        try:
            with Session(self._db) as session, session.begin():
                if session.get(CategoryOverride, category.code) is not None:
                    raise CategoryExists(f"category {category.code!r} exists: change it")
                session.add(row)
        except IntegrityError as err:  # created by someone else in the same instant
            raise CategoryExists(f"category {category.code!r} exists: change it") from err
        self._changed()
        return category

    def change(
        self,
        code: str,
        change: CategoryChange,
        *,
        departments: Mapping[str, Collection[str]],
        author: str,
    ) -> tuple[Category, str | None]:
        """Apply ``change`` to a category (stored or configured); returns it and its department.

        ``departments``: the organisation's departments and the categories each takes now.
        """
        sla = check_sla(change.sla_hours, partial=True) if change.sla_hours is not None else {}
        if change.department is not None:
            check_department(change.department, departments)
        try:
            with Session(self._db) as session, session.begin():
                row = session.get(CategoryOverride, code, with_for_update=True)
                base = self._configured.get(code)
                if row is None:
                    if base is None:
                        raise UnknownCategory(f"no category {code!r}")
                    row = self._row_from_config(base, department_of(code, departments))
                    session.add(row)
                department = change.department or row.department
                if department is None:
                    check_department(department, departments)
                current = category_of(row, base)
                named = {"name_zh": change.name_zh, "name_en": change.name_en, "clock": change.clock}
                hours = {**current.sla_hours_by_urgency(), **sla}
                try:
                    updated = Category.model_validate(
                        current.model_dump()
                        | {k: v for k, v in named.items() if v is not None}
                        | {"sla_hours": hours["normal"], "urgent_sla_hours": hours["urgent"]}
                    )
                except ValidationError as err:
                    raise CategoryError(str(err)) from err
                row.name_zh, row.name_en, row.clock = updated.name_zh, updated.name_en, updated.clock
                row.sla_hours, row.department = hours, department
                row.revision += 1
                row.updated_by, row.updated_at = author, datetime.now(UTC)
        except IntegrityError as err:  # the first change of a configured category, twice at once
            raise CategoryExists(
                f"category {code!r} was changed by someone else just now: try again"
            ) from err
        self._changed()
        return updated, department

    def _row_from_config(self, base: Category, department: str | None) -> CategoryOverride:
        return CategoryOverride(
            code=base.code,
            name_zh=base.name_zh,
            name_en=base.name_en,
            sla_hours=base.sla_hours_by_urgency(),
            accept_minutes=base.accept_minutes,
            sign_minutes=base.sign_minutes,
            clock=base.clock,
            department=department,
            revision=0,
        )

    def _changed(self) -> None:
        """This process sees its own change at once; the organisation re-reads the departments."""
        self.invalidate()
        self._on_change()
