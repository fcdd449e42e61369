"""The API's request and response bodies (marshmallow): what the OpenAPI document publishes.
Field values are checked again by the same rules as the CLI and import (domain/validation.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from domain import clock

TEXT = validate.Length(min=1, max=2000)
NAME = validate.Length(min=1, max=200)
def _a_real_day(text: str) -> None:
    try:
        clock.parse_day(text)
    except ValueError:
        raise ValidationError(f"{text!r} is not a day of the calendar (YYYY-MM-DD)") from None


# the pattern for the OpenAPI document, the calendar for 0000-00-00 and 2026-02-30
DAY: list[Callable[[Any], Any]] = [validate.Regexp(r"^\d{4}-\d{2}-\d{2}$", error="a date written YYYY-MM-DD"),
       _a_real_day]


def _a_real_instant(text: str) -> None:
    try:
        clock.parse_instant(text)
    except ValueError:
        raise ValidationError(f"{text!r} is not an ISO date or date-time") from None


INSTANT: list[Callable[[Any], Any]] = [validate.Length(min=10, max=40), _a_real_instant]


class RecordIn(Schema):
    subject = fields.String(required=True, validate=validate.Length(min=5, max=64),
                            metadata={"example": "uscc:91330112MA2B0XXXXX"})
    subject_name = fields.String(validate=NAME, metadata={"description": "registers a new subject"})
    item_code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    decision_number = fields.String(required=True, validate=NAME)
    decision_date = fields.String(required=True, validate=DAY)
    summary = fields.String(required=True, validate=TEXT)
    details = fields.Dict(keys=fields.String(), metadata={"description": "item-specific fields"})


class CorrectionIn(Schema):
    reason = fields.String(required=True, validate=TEXT)
    changes = fields.Dict(required=True, keys=fields.String())
    on = fields.String(validate=DAY, metadata={"description": "the day it takes effect"})


class RevocationIn(Schema):
    reason = fields.String(required=True, validate=TEXT)
    on = fields.String(validate=DAY)


class Written(Schema):
    rows = fields.Integer()
    submitted = fields.Integer()
    corrected = fields.Integer()
    revoked = fields.Integer()
    subjects_registered = fields.Integer()
    events = fields.Integer()
    record_ids = fields.List(fields.String())


class StateQuery(Schema):
    as_of = fields.String(validate=DAY)
    known_at = fields.String(validate=validate.Length(max=40),
                             metadata={"description": "ISO date-time, or a date: its end"})
    purpose = fields.String(validate=TEXT)


class DiffQuery(Schema):
    start = fields.String(required=True, validate=DAY, data_key="from")
    end = fields.String(validate=DAY, data_key="to")
    known_at = fields.String(validate=validate.Length(max=40))
    purpose = fields.String(validate=TEXT)


class ExtractIn(Schema):
    as_of = fields.String(validate=validate.Length(max=40))
    purpose = fields.String(validate=TEXT)


class CheckpointsQuery(Schema):
    since = fields.Integer(validate=validate.Range(min=1))


class QueriesQuery(Schema):
    subject = fields.String(validate=validate.Length(min=5, max=64))
    since = fields.String(validate=validate.Length(max=40))
