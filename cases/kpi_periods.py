"""The periods KPIs are read over: a day, a week (Monday first), a month, a quarter of the local
calendar, or a custom span; and the period before each, for the side-by-side comparison.

Calendar periods start at local midnight in the deployment's time zone (a Shanghai month is not a UTC
month); the bounds are returned as aware datetimes, the end exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal, get_args

PeriodKind = Literal["day", "week", "month", "quarter", "custom"]
PERIOD_KINDS: tuple[str, ...] = get_args(PeriodKind)
# A custom period longer than this is refused: a KPI of ten years is nobody's question, and it would
# read the whole log.
MAX_CUSTOM = timedelta(days=366)


@dataclass(frozen=True, slots=True)
class Period:
    kind: PeriodKind
    start: datetime
    end: datetime  # exclusive

    def previous(self) -> Period:
        """The period of the same kind just before this one (a custom one: as long, ending at its start)."""
        tz = self.start.tzinfo or UTC
        local = self.start.astimezone(tz).date()
        if self.kind == "custom":
            return Period("custom", self.start - (self.end - self.start), self.start)
        if self.kind == "day":
            return calendar_period("day", local - timedelta(days=1), tz)
        if self.kind == "week":
            return calendar_period("week", local - timedelta(days=7), tz)
        if self.kind == "month":
            return calendar_period("month", (local.replace(day=1) - timedelta(days=1)), tz)
        return calendar_period("quarter", (local.replace(day=1) - timedelta(days=1)), tz)


class PeriodError(ValueError):
    """A period that cannot be read (its bounds reversed, too long, or without a time zone)."""


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def _month_start(day: date, months_on: int) -> date:
    index = day.year * 12 + day.month - 1 + months_on
    return date(index // 12, index % 12 + 1, 1)


def calendar_period(kind: PeriodKind, anchor: date, tz: tzinfo) -> Period:
    """The day, week, month or quarter (local calendar in ``tz``) that contains ``anchor``."""
    if kind == "day":
        first, last = anchor, anchor + timedelta(days=1)
    elif kind == "week":
        first = anchor - timedelta(days=anchor.weekday())
        last = first + timedelta(days=7)
    elif kind == "month":
        first = anchor.replace(day=1)
        last = _month_start(first, 1)
    elif kind == "quarter":
        first = date(anchor.year, (anchor.month - 1) // 3 * 3 + 1, 1)
        last = _month_start(first, 3)
    else:
        raise PeriodError("a custom period needs its own start and end")
    return Period(kind, _midnight(first, tz), _midnight(last, tz))


def custom_period(start: datetime, end: datetime) -> Period:
    """[start, end): both with a time zone, start before end, at most MAX_CUSTOM long."""
    if start.tzinfo is None or end.tzinfo is None:
        raise PeriodError("start and end need a UTC offset")
    if end <= start:
        raise PeriodError("start must be before end")
    if end - start > MAX_CUSTOM:
        raise PeriodError(f"a custom period is at most {MAX_CUSTOM.days} days")
    return Period("custom", start, end)


def month_period(month: str, tz: tzinfo) -> Period:
    """The calendar month ``YYYY-MM`` in ``tz``; PeriodError for anything else."""
    try:
        year, number = (int(part) for part in month.split("-"))
        return calendar_period("month", date(year, number, 1), tz)
    except ValueError as err:
        raise PeriodError(f"month {month!r} is not YYYY-MM") from err


def weeks_of(period: Period) -> list[tuple[datetime, datetime]]:
    """The period cut into weeks from its start (the last one shorter): the buckets of a trend chart."""
    spans = []
    at = period.start
    while at < period.end:
        spans.append((at, min(at + timedelta(days=7), period.end)))
        at += timedelta(days=7)
    return spans
