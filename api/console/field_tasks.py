"""What the phone view shows of a case: the open cases of a jurisdiction by what falls due first, the
SLA countdown in words, and where the case is (names, and a map link when coordinates exist)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload

from api.console.names import Names
from cases.models import OPEN_STATES, Case

# A phone shows a day's work, not the whole queue: the list stays small and quick to send.
FIELD_TASKS = 100


@dataclass(frozen=True, slots=True)
class Place:
    """Where a case is, by name; ``lat``/``lon`` (WGS-84) when a device of its evidence has them."""

    community: str
    grid: str
    building: str | None
    lat: float | None
    lon: float | None

    @property
    def geo_url(self) -> str | None:
        """A ``geo:`` link: the phone's own map app opens it."""
        return None if self.lat is None or self.lon is None else f"geo:{self.lat:.6f},{self.lon:.6f}"

    @property
    def osm_url(self) -> str | None:
        if self.lat is None or self.lon is None:
            return None
        return f"https://www.openstreetmap.org/?mlat={self.lat:.6f}&mlon={self.lon:.6f}#map=18/{self.lat:.6f}/{self.lon:.6f}"


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    title: str
    category: str
    state: str
    due: datetime
    countdown: str
    overdue: bool
    mine: bool
    place: Place


def as_utc(moment: datetime) -> datetime:
    """Stored moments are UTC; SQLite hands them back naive."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def due_of(case: Case) -> datetime:
    """What falls due next: the running stage's deadline (sign, handle …), else the case's."""
    return as_utc(case.stage_due or case.deadline)


def countdown(due: datetime, now: datetime, words: dict[str, str]) -> tuple[str, bool]:
    """("还剩 2 小时 15 分", False) or ("overdue by 20 min", True): whole minutes, days past 24 h."""
    seconds = (due - now).total_seconds()
    minutes = int(abs(seconds) // 60)
    days, hours, mins = minutes // 1440, (minutes % 1440) // 60, minutes % 60
    if days:
        span = words["fld_span_dh"].format(d=days, h=hours)
    elif hours:
        span = words["fld_span_hm"].format(h=hours, m=mins)
    else:
        span = words["fld_span_m"].format(m=mins)
    overdue = seconds < 0
    return words["fld_overdue" if overdue else "fld_left"].format(span=span), overdue


def place_of(case: Case, names: Names) -> Place:
    """The case's community, grid and building by name; coordinates from its first located device."""
    building, lat, lon = None, None, None
    catalog = names.resources.catalog
    for evidence in case.evidence:
        building = building or evidence.building
        info = catalog.device_in(case.community, evidence.device)
        if info is not None and info.device.lat is not None and lat is None:
            lat, lon = info.device.lat, info.device.lon
            building = building or info.device.building
    return Place(
        community=names.community(case.community),
        grid=names.grid(case.grid, case.community),
        building=names.building(building, case.community) if building else None,
        lat=lat,
        lon=lon,
    )


def field_tasks(session: Session, jurisdiction: ColumnElement[bool], limit: int = FIELD_TASKS) -> list[Case]:
    """The open cases inside ``jurisdiction``, what falls due first at the top."""
    query = (
        select(Case)
        .where(Case.state.in_([s.value for s in OPEN_STATES]), jurisdiction)
        .order_by(func.coalesce(Case.stage_due, Case.deadline), Case.id)
        .options(selectinload(Case.evidence))
        .limit(limit)
    )
    return list(session.scalars(query))


def task_of(case: Case, names: Names, username: str, now: datetime) -> Task:
    due = due_of(case)
    words, overdue = countdown(due, now, names.words)
    return Task(
        id=case.id,
        title=case.title,
        category=names.category(case.category),
        state=case.state,
        due=due,
        countdown=words,
        overdue=overdue,
        mine=case.assignee == username,
        place=place_of(case, names),
    )
