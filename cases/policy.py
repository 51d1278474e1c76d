"""What the case workflow needs to know about time and responsibility: categories, the working-time
calendar, the organisation. Built once from ``config/`` and shared by the case book, the workflow and
the SLA monitor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine

from cases.calendar import ContinuousClock, WorkCalendar
from cases.categories import Category, load_categories
from cases.organisation import Organisation, load_organisation
from cases.orgstore import OrganisationStore


class Clock(Protocol):
    def add(self, start: datetime, duration: timedelta) -> datetime: ...
    def between(self, start: datetime, end: datetime) -> timedelta: ...


@dataclass(frozen=True)
class CasePolicy:
    categories: dict[str, Category]
    calendar: WorkCalendar
    configured: Organisation
    # Where run-time changes to people, departments and rosters are kept; None: config only.
    store: OrganisationStore | None = None

    @classmethod
    def load(cls, config_dir: Path, db: Engine | None = None) -> CasePolicy:
        """The policy from ``config/``; with ``engine``, the organisation includes run-time changes."""
        categories = load_categories(config_dir)
        organisation = load_organisation(config_dir)
        for department in organisation.departments:
            unknown = sorted(set(department.categories) - set(categories))
            if unknown:
                raise ValueError(
                    f"organisation.yaml: department {department.id}: unknown categories {unknown}"
                )
        return cls(
            categories,
            WorkCalendar.load(config_dir / "calendar.yaml"),
            organisation,
            OrganisationStore(db, organisation) if db is not None else None,
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
        spec = self.categories[category]
        factor = spec.urgent_factor if urgency == "urgent" else 1.0
        return self.clock(category).add(opened, timedelta(hours=spec.sla_hours * factor))
