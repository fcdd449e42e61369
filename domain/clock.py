"""The ledger's clock: the time every new event is recorded at.

Events take their ``recorded_at`` (eventsourcing's ``timestamp``) from here. Tests, the demo city and
replays set the time explicitly with :func:`frozen_at`; everything else gets the current UTC time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, timedelta, timezone

# China has kept UTC+8 all year since 1991: a decision date is a day on that clock.
CHINA_TIME = timezone(timedelta(hours=8), "UTC+08:00")

_frozen: ContextVar[datetime | None] = ContextVar("credit_ledger_clock", default=None)


class NaiveTimeError(ValueError):
    """A time without a timezone: the ledger records UTC instants only."""


def now() -> datetime:
    """The current ledger time, timezone-aware UTC."""
    frozen = _frozen.get()
    return frozen if frozen is not None else datetime.now(UTC)


def frozen_instant() -> datetime | None:
    """The time :func:`frozen_at` set here, if any: for work handed to another process."""
    return _frozen.get()


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; naive datetimes are refused rather than guessed."""
    if moment.tzinfo is None:
        raise NaiveTimeError(f"{moment.isoformat()} has no timezone")
    return moment.astimezone(UTC)


def today_in_china() -> date:
    """Today's date on the China calendar, by the ledger clock."""
    return now().astimezone(CHINA_TIME).date()


def parse_day(text: str) -> date:
    """A calendar date written YYYY-MM-DD, and only so (Python also reads 20260105 and
    2026-W01-1 as dates; a department's file must not)."""
    if not (len(text) == 10 and text[4] == text[7] == "-"
            and (text[:4] + text[5:7] + text[8:]).isdigit()):
        raise ValueError(f"{text!r} is not a date written YYYY-MM-DD")
    return date.fromisoformat(text)


def parse_instant(text: str) -> datetime:
    """A time as the CLI and the API take it: an ISO date-time (China time unless it names a
    zone), or a bare date YYYY-MM-DD meaning the last instant of that China day. ValueError
    for anything else."""
    if len(text) == 10:
        try:
            return (datetime.combine(parse_day(text), time(0), tzinfo=CHINA_TIME)
                    + timedelta(days=1) - timedelta(microseconds=1))
        except OverflowError:  # 9999-12-31 has no day after it
            return datetime.combine(parse_day(text), time.max, tzinfo=CHINA_TIME)
    moment = datetime.fromisoformat(text)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=CHINA_TIME)
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} lies outside the calendar in UTC") from None
    return moment


def naive_utc(moment: datetime) -> datetime:
    """The instant as naive UTC: how SQLite and PostgreSQL both store times, so they read the
    same values back."""
    return as_utc(moment).replace(tzinfo=None)


@contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    """Record every event inside the block at ``moment``."""
    token = _frozen.set(as_utc(moment))
    try:
        yield
    finally:
        _frozen.reset(token)
