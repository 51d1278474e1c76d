"""The command-centre wall's figures: open cases by category and SLA state, today's intake by channel,
the week's cases opened and closed per day.

Each figure is one aggregate query (GROUP BY, or sums over day buckets) inside the caller's jurisdiction
clause, so the database counts and only a few rows come back: fast at a district's 10^5–10^6 cases.

Channels: a case raised by a sensor is ``sensor``; a report filed through Open311 (the 12345 hotline's
intake, actor ``open311:<account>``) is ``hotline``; one filed by a signed-in account (console or API)
is ``console``; anything else (a resident app's intake under its own actor name) is ``residents``. A case
an operator opened by hand says how the call came in (``data.channel`` on its first event: hotline, 12345,
counter), and that comes first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import QueryableAttribute, Session

from cases.models import OPEN_STATES, Case, CaseEvent, CaseState
from cases.queue import DUE_SOON

SlaState = Literal["overdue", "due_soon", "on_time", "paused"]
SLA_STATES: tuple[SlaState, ...] = ("overdue", "due_soon", "on_time", "paused")
Channel = Literal["sensor", "hotline", "console", "residents"]
CHANNELS: tuple[Channel, ...] = ("sensor", "hotline", "console", "residents")
LOOKUP_CHUNK = 1000  # ids per IN list
HOTLINE_PREFIX = "open311:"
TREND_DAYS = 7


@dataclass(frozen=True, slots=True)
class OpenByCategory:
    category: str
    counts: dict[SlaState, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class TrendDay:
    day: date
    opened: int
    closed: int


def _sla_state(now: datetime) -> ColumnElement[str]:
    """The same judgement as the map's ``sla_state``, in SQL: paused, then overdue, then due soon."""
    soon = now + DUE_SOON
    return case(
        (Case.state == CaseState.SUSPENDED.value, "paused"),
        (or_(Case.deadline <= now, Case.stage_due <= now), "overdue"),
        (or_(Case.deadline <= soon, Case.stage_due <= soon), "due_soon"),
        else_="on_time",
    )


def open_by_category(
    session: Session, jurisdiction: ColumnElement[bool], now: datetime
) -> list[OpenByCategory]:
    """Open cases per category and SLA state; the categories with the most overdue first."""
    sla = _sla_state(now).label("sla")
    rows = session.execute(
        select(Case.category, sla, func.count())
        .where(Case.state.in_([s.value for s in OPEN_STATES]), jurisdiction)
        .group_by(Case.category, sla)
    )
    counts: dict[str, dict[SlaState, int]] = {}
    for category, state, n in rows:
        by_state = counts.setdefault(category, dict.fromkeys(SLA_STATES, 0))
        by_state[cast(SlaState, state)] = int(n)
    found = [OpenByCategory(category, c) for category, c in counts.items()]
    return sorted(found, key=lambda c: (-c.counts["overdue"], -c.total, c.category))


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """Local midnight of ``day``, in UTC."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


# The channel a case opened by hand states on its first event (``data.channel``, api/console/intake.py),
# as the wall counts it: a 12345 transfer is the hotline's, a call or a counter visit the console's.
STATED_CHANNELS: dict[str, Channel] = {
    "hotline": "hotline",
    "12345": "hotline",
    "console": "console",
    "counter": "console",
}
STATED_PREFIX = "stated:"


def channel_of(source: str, actor: str, is_account: Callable[[str], bool]) -> Channel:
    """``source``: the case's source, or ``stated:<channel>`` when its first event names its channel."""
    stated = (
        STATED_CHANNELS.get(source.removeprefix(STATED_PREFIX)) if source.startswith(STATED_PREFIX) else None
    )
    if stated is not None:
        return stated
    if source == "sensor":
        return "sensor"
    if actor.startswith(HOTLINE_PREFIX):
        return "hotline"
    return "console" if is_account(actor) else "residents"


def intake_actors(
    session: Session, jurisdiction: ColumnElement[bool], day: tuple[datetime, datetime]
) -> list[tuple[str, str, int]]:
    """(source, first event's actor, cases) of the cases opened in [day), merged ones included:
    a report that joined an open case still came in. A sensor case's actor does not matter (its
    channel is its source), so only reported cases have their first event looked up; when that event
    states the channel (``data.channel``: a case opened by hand), the source reads ``stated:<channel>``."""
    opened_that_day = and_(Case.opened_at >= day[0], Case.opened_at < day[1])
    counts: Counter[tuple[str, str]] = Counter()
    for source, n in session.execute(
        select(Case.source, func.count())
        .where(opened_that_day, Case.source == "sensor", jurisdiction)
        .group_by(Case.source)
    ):
        counts[str(source), ""] += int(n)
    reported = list(
        session.execute(
            select(Case.id, Case.source).where(opened_that_day, Case.source != "sensor", jurisdiction)
        )
    )
    # A case's first event is its intake (opened / reported, written with the case). Looked up by the
    # case_id index, then by primary key, a day's worth at a time: joining on the action instead reads
    # every "reported" event of the log to keep today's few (PostgreSQL plans it so at 10^6 events).
    for first in range(0, len(reported), LOOKUP_CHUNK):
        chunk = dict(reported[first : first + LOOKUP_CHUNK])
        firsts = session.execute(
            select(CaseEvent.case_id, func.min(CaseEvent.id))
            .where(CaseEvent.case_id.in_(list(chunk)))
            .group_by(CaseEvent.case_id)
        )
        event_case = {event_id: case_id for case_id, event_id in firsts}
        for event_id, actor, data in session.execute(
            select(CaseEvent.id, CaseEvent.actor, CaseEvent.data).where(CaseEvent.id.in_(list(event_case)))
        ):
            counts[_origin(str(chunk[event_case[event_id]]), data), str(actor)] += 1
    return [(source, actor, n) for (source, actor), n in sorted(counts.items())]


def _origin(source: str, data: object) -> str:
    """The source, or the channel the first event states when it is one the wall knows."""
    stated = data.get("channel") if isinstance(data, dict) else None
    return f"{STATED_PREFIX}{stated}" if isinstance(stated, str) and stated in STATED_CHANNELS else source


def intake_by_channel(
    rows: Sequence[tuple[str, str, int]], is_account: Callable[[str], bool]
) -> dict[Channel, int]:
    counts: Counter[Channel] = Counter(dict.fromkeys(CHANNELS, 0))
    for source, actor, n in rows:
        counts[channel_of(source, actor, is_account)] += n
    return {channel: counts[channel] for channel in CHANNELS}


def _per_day(
    session: Session,
    column: QueryableAttribute[Any],
    where: ColumnElement[bool],
    bounds: list[datetime],
) -> list[int]:
    """How many cases (of ``where``) have ``column`` inside each [bounds[i], bounds[i+1]), in one query."""
    buckets = [
        func.coalesce(func.sum(case((and_(column >= a, column < b), 1), else_=0)), 0)
        for a, b in pairwise(bounds)
    ]
    row = session.execute(select(*buckets).where(column >= bounds[0], column < bounds[-1], where)).one()
    return [int(n) for n in row]


def week_trend(
    session: Session, jurisdiction: ColumnElement[bool], today: date, tz: ZoneInfo
) -> list[TrendDay]:
    """Cases opened and cases closed on each of the last seven local days, today last.

    As in the KPIs, a report merged into another case is not a case of its own, and a merge or a void
    stamps ``closed_at`` without closing any work: only cases that stayed closed count as closed."""
    counted = and_(jurisdiction, Case.state != CaseState.MERGED.value)
    done = and_(counted, Case.state.in_([CaseState.CLOSED.value, CaseState.RETURN_VISIT.value]))
    days = [today - timedelta(days=TREND_DAYS - 1 - i) for i in range(TREND_DAYS)]
    bounds = [day_start(d, tz) for d in [*days, today + timedelta(days=1)]]
    opened = _per_day(session, Case.opened_at, counted, bounds)
    closed = _per_day(session, Case.closed_at, done, bounds)
    return [TrendDay(d, o, c) for d, o, c in zip(days, opened, closed, strict=True)]
