"""What the case workflow needs to know about time and responsibility: categories, the working-time
calendar, the organisation. Built once from ``config/`` and shared by the case book, the workflow and
the SLA monitor; bound to the database, its categories and organisation include the run-time changes
and follow them while the process runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine

from cases.calendar import ContinuousClock, WorkCalendar
from cases.categories import Category, load_categories
from cases.category_store import CategoryStore
from cases.organisation import Organisation, load_organisation
from cases.orgstore import OrganisationStore


class Clock(Protocol):
    def add(self, start: datetime, duration: timedelta) -> datetime: ...
    def between(self, start: datetime, end: datetime) -> timedelta: ...


@dataclass(frozen=True)
class CasePolicy:
    configured_categories: dict[str, Category]
    calendar: WorkCalendar
    configured: Organisation
    # Where run-time changes to people, departments and rosters are kept; None: config only.
    store: OrganisationStore | None = None
    # Where categories created or changed at run time are kept; None: config only.
    category_store: CategoryStore | None = None

    @classmethod
    def load(cls, config_dir: Path, db: Engine | None = None) -> CasePolicy:
        """The policy from ``config/``; with ``db``, categories and organisation include run-time changes."""
        categories = load_categories(config_dir)
        organisation = load_organisation(config_dir)
        for department in organisation.departments:
            unknown = sorted(set(department.categories) - set(categories))
            if unknown:
                raise ValueError(
                    f"organisation.yaml: department {department.id}: unknown categories {unknown}"
                )
        if db is None:
            return cls(categories, WorkCalendar.load(config_dir / "calendar.yaml"), organisation)
        store = OrganisationStore(db, organisation)
        # A category's department is part of the organisation: a category change re-reads it.
        category_store = CategoryStore(db, categories, on_change=store.invalidate)
        return cls(
            categories, WorkCalendar.load(config_dir / "calendar.yaml"), organisation, store, category_store
        )

    @property
    def categories(self) -> dict[str, Category]:
        """The categories as they stand now: config plus those created or changed through the API.

        Do not keep the dict: read it where it is used, so a new category is seen within seconds.
        """
        return (
            self.category_store.current() if self.category_store is not None else self.configured_categories
        )

    @property
    def organisation(self) -> Organisation:
        """The organisation as it stands now: config plus the changes made through the API."""
        return self.store.current() if self.store is not None else self.configured

    def clock(self, category: str) -> Clock:
        spec = self.categories.get(category)
        return ContinuousClock() if spec is not None and spec.clock == "continuous" else self.calendar

    def stage_due(
        self, category: str, stage: str, start: datetime, urgency: str = "normal"
    ) -> datetime | None:
        """When a stage that starts at ``start`` is due; None for stages without their own clock."""
        spec = self.categories[category]
        call = self.organisation.call_up
        factor = spec.urgent_factor if urgency == "urgent" else 1.0
        durations = {
            "accept": timedelta(minutes=spec.accept_minutes * factor),
            "sign": timedelta(minutes=spec.sign_minutes * factor),
            "respond": timedelta(hours=call.respond_hours * factor),
            "resolve_call": timedelta(hours=call.resolve_hours * factor),
        }
        if stage not in durations:
            return None
        # A district department works office hours even for urgent categories.
        clock = self.calendar if stage in ("respond", "resolve_call") else self.clock(category)
        return clock.add(start, durations[stage])

    def completion_deadline(self, category: str, opened: datetime, urgency: str = "normal") -> datetime:
        """When a case opened at ``opened`` must be completed: the category's SLA for its urgency."""
        return self.clock(category).add(opened, self.categories[category].sla(urgency))
