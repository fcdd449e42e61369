"""What every aggregate of the ledger shares: events name their actor and take the ledger's clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from eventsourcing.domain import Aggregate

from domain import clock
from domain.clock import CHINA_TIME


class DomainError(Exception):
    """A command broke a rule of the credit domain; nothing is recorded."""


class ImpossibleDate(DomainError):
    """An act dated when it cannot have happened: after today, or before what it answers."""


def check_not_future(what: str, day: date) -> None:
    """An act takes effect today or earlier (China time): the ledger records what happened."""
    today = clock.today_in_china()
    if day > today:
        raise ImpossibleDate(f"{what} {day.isoformat()} is after today, {today.isoformat()} "
                             "(China time)")


def check_not_before(what: str, day: date, earlier: str, earlier_day: date) -> None:
    """An act that answers another cannot precede it."""
    if day < earlier_day:
        raise ImpossibleDate(f"{what} {day.isoformat()} is before {earlier} "
                             f"{earlier_day.isoformat()}")


class LedgerAggregate(Aggregate):
    """Base of the ledger's aggregates.

    Every command takes ``actor``: the code of the authority responsible for the event. The ledger
    signs each event with that authority's key, so an event without an actor cannot be stored.
    """

    class Event(Aggregate.Event):
        @staticmethod
        def create_timestamp() -> datetime:
            return clock.now()

    class Created(Event, Aggregate.Created):
        pass

    @property
    def subject_key(self) -> str | None:
        """The credit subject this aggregate is about, for the per-subject index (None: no subject)."""
        return None


def start_of_day(day: date) -> datetime:
    """The instant a calendar day begins in China, in UTC."""
    return datetime.combine(day, time(0), tzinfo=CHINA_TIME).astimezone(UTC)


def effective_at(event: Any) -> datetime | None:
    """The instant an event takes effect in the world (its decision date), when it has one."""
    value = getattr(event, "effective_at", None)
    if isinstance(value, datetime):
        return clock.as_utc(value)
    day = getattr(event, "decision_date", None)
    if isinstance(day, date):
        return start_of_day(day)
    return None
