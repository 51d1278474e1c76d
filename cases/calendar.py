"""Working time for SLA clocks: office hours, public holidays and make-up workdays (调休).

Urgent categories (flooding, smoke, gas) run on a continuous clock; everything else counts only the
hours the responsible office is at work, so a case filed Friday 17:55 before a holiday is not overdue
on the morning after the holiday.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.catalog import load_model


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end <= self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")
        return self


class CalendarConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "Asia/Shanghai"
    working_hours: list[Period] = Field(min_length=1, description="The same on every working day.")
    weekend: list[int] = Field(default=[5, 6], description="Days off by weekday (Monday = 0).")
    holidays: list[date] = Field(default_factory=list, description="Public holidays (法定节假日).")
    workdays: list[date] = Field(default_factory=list, description="Weekend days worked instead (调休上班).")


MAX_CACHED_DAYS = 4_000


class WorkCalendar:
    def __init__(self, config: CalendarConfig) -> None:
        self._config = config
        self._tz = ZoneInfo(config.timezone)
        self._holidays, self._workdays = set(config.holidays), set(config.workdays)
        # A day's working periods, as aware datetimes: KPIs over a quarter ask for the same few hundred
        # days thousands of times. Bounded: cleared when it holds more than about ten years of days.
        self._day_periods: dict[date, tuple[tuple[datetime, datetime], ...]] = {}
        self._day_total: dict[date, timedelta] = {}  # the working time of each of those days

    @classmethod
    def load(cls, path: Path) -> WorkCalendar:
        return cls(load_model(CalendarConfig, path))

    def is_working_day(self, day: date) -> bool:
        if day in self._workdays:
            return True
        return day not in self._holidays and day.weekday() not in self._config.weekend

    def _periods(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        known = self._day_periods.get(day)
        if known is not None:
            return known
        periods = (
            tuple(
                (datetime.combine(day, p.start, self._tz), datetime.combine(day, p.end, self._tz))
                for p in self._config.working_hours
            )
            if self.is_working_day(day)
            else ()
        )
        if len(self._day_periods) >= MAX_CACHED_DAYS:
            self._day_periods.clear()
            self._day_total.clear()
        self._day_periods[day] = periods
        self._day_total[day] = sum((end - begin for begin, end in periods), timedelta(0))
        return periods

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment ``duration`` of working time after ``start`` (aware datetimes)."""
        remaining = duration
        local = start.astimezone(self._tz)  # one time zone: comparisons need no UTC offsets
        day = local.date()
        for _ in range(3 * 366):  # a year of holidays at most; guards against an empty calendar
            periods = self._periods(day)
            whole = self._day_total.get(day, timedelta(0))
            if periods and local <= periods[0][0] and remaining > whole:
                remaining -= whole  # the whole working day passes: no need to walk its periods
            else:
                for begin, end in periods:
                    begin = max(begin, local)
                    if end <= begin:
                        continue
                    if end - begin >= remaining:
                        return (begin + remaining).astimezone(start.tzinfo)
                    remaining -= end - begin
            day += timedelta(days=1)
        raise ValueError("the calendar has no working time in the next three years")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time elapsed from ``start`` to ``end``."""
        if end <= start:
            return timedelta(0)
        total = timedelta(0)
        day, last = start.astimezone(self._tz).date(), end.astimezone(self._tz).date()
        while day <= last:
            for begin, finish in self._periods(day):
                overlap = min(finish, end) - max(begin, start)
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return total


class ContinuousClock:
    """The 24/7 clock of urgent categories, with the same interface as WorkCalendar."""

    def add(self, start: datetime, duration: timedelta) -> datetime:
        return start + duration

    def between(self, start: datetime, end: datetime) -> timedelta:
        return max(end - start, timedelta(0))
