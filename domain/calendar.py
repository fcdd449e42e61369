"""Working days in China: weekends and public holidays off, adjusted weekend working days on.

The days come from the calendar policy (published data, one version per State Council notice). A
year the calendar does not hold yet falls back to weekends and the fixed-date holidays, and any
deadline that falls in such a year is *provisional*.

Standard library only.
"""

from __future__ import annotations

from datetime import date, timedelta

from domain.policies import CalendarPolicy


def is_working_day(calendar: CalendarPolicy, day: date) -> bool:
    if day.year in calendar.years:
        if day in calendar.adjusted_workdays:
            return True
        return day.weekday() < 5 and day not in calendar.holidays
    return day.weekday() < 5 and (day.month, day.day) not in calendar.fallback_holidays


def add_working_days(calendar: CalendarPolicy, start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself not counted)."""
    if days < 0:
        raise ValueError("days must not be negative")
    day = start
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(calendar, day):
            counted += 1
    return day


def is_provisional(calendar: CalendarPolicy, start: date, end: date) -> bool:
    """Whether any year between the two days is not yet in the calendar."""
    return any(year not in calendar.years for year in range(start.year, end.year + 1))
