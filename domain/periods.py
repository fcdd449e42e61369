"""Calendar arithmetic for disclosure and listing periods. Standard library only."""

from __future__ import annotations

from datetime import date

_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _month_days(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS[month - 1]


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later; the 31st of a shorter month becomes its last day."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return date(year, month, min(day.day, _month_days(year, month)))


def add_years(day: date, years: int) -> date:
    return add_months(day, 12 * years)
