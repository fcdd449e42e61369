"""Policies as versioned data: the catalogue, the grading policy, the lists' measures, the calendar.

Each is a JSON document with a ``kind``, a ``version`` and an ``effective_from`` date. The credit
office publishes documents into the ledger; a past date is judged under the version in force then
(the latest ``effective_from`` on or before it). The bundled versions are in ``domain/policies/``.

Standard library only: offline verifiers recompute derived state with this module.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

KINDS = ("catalogue", "grading", "measures", "calendar")
CATEGORIES = ("basic", "licensing", "penalty", "judgment", "arrears", "honour", "commitment",
              "evaluation", "other")
POLARITIES = ("negative", "positive", "neutral")
SEVERITIES = ("minor", "ordinary", "serious")
DISCLOSURES = ("public", "government_shared", "authorised_query")
LISTS = ("black", "red")
ITEM_CODE = re.compile(r"^[A-Z][A-Z0-9.-]{1,31}$")
AUTHORITY_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
GRADES = ("A", "B", "C", "D")


class PolicyError(ValueError):
    """A policy document that cannot be used; the message names the field at fault."""


class NoPolicyInForce(LookupError):
    def __init__(self, kind: str, day: date) -> None:
        super().__init__(f"no {kind} policy is in force on {day.isoformat()}")
        self.kind = kind
        self.day = day


# -- reading documents ------------------------------------------------------------------------


class _Reader:
    def __init__(self, doc: Mapping[str, Any], where: str = "") -> None:
        if not isinstance(doc, Mapping):
            raise PolicyError(f"{where or 'the document'} must be a JSON object")
        self.doc = doc
        self.where = where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
        if key not in self.doc:
            if optional:
                return None
            raise PolicyError(f"{self.path(key)} is missing")
        value = self.doc[key]
        if value is None and optional:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int,))):
            raise PolicyError(f"{self.path(key)} has the wrong type")
        return value

    def text(self, key: str, *, optional: bool = False) -> str:
        value = self.get(key, str, optional=optional)
        if value is not None and not value.strip():
            raise PolicyError(f"{self.path(key)} is empty")
        return value  # type: ignore[no-any-return]

    def choice(self, key: str, choices: Sequence[str], *, optional: bool = False) -> str:
        value = self.get(key, str, optional=optional)
        if value is not None and value not in choices:
            raise PolicyError(f"{self.path(key)} is {value!r}, not one of {', '.join(choices)}")
        return value  # type: ignore[no-any-return]

    def day(self, key: str) -> date:
        value = self.text(key)
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise PolicyError(f"{self.path(key)} {value!r} is not a date (YYYY-MM-DD)") from None

    def months(self, key: str, *, optional: bool = False) -> int | None:
        value = self.get(key, int, optional=optional)
        if value is not None and not 0 <= value <= 600:
            raise PolicyError(f"{self.path(key)} must be between 0 and 600 months")
        return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class CatalogueItem:
    code: str
    name_zh: str
    name_en: str
    department: str
    category: str
    polarity: str
    severity: str | None
    disclosure: str
    min_disclosure_months: int
    max_disclosure_months: int | None
    repairable: bool
    field: str | None = None

    @property
    def negative(self) -> bool:
        return self.polarity == "negative"


@dataclass(frozen=True)
class Catalogue:
    kind = "catalogue"
    version: str
    effective_from: date
    source: str
    retention_years: int
    minor_shown_publicly: bool
    items: Mapping[str, CatalogueItem]

    def item(self, code: str) -> CatalogueItem | None:
        return self.items.get(code)


@dataclass(frozen=True)
class Band:
    grade: str
    min_points: int | None


@dataclass(frozen=True)
class GradingPolicy:
    kind = "grading"
    version: str
    effective_from: date
    source: str
    base_points: int
    max_points: int
    negative_points: Mapping[str, int]
    positive_points: int
    item_points: Mapping[str, int]
    commitment_points: Mapping[str, int]
    bands: tuple[Band, ...]
    list_overrides: Mapping[str, Mapping[str, str] | None]
    counts_under_objection: bool


@dataclass(frozen=True)
class Measure:
    code: str
    zh: str
    en: str
    matters: tuple[str, ...] = ()  # the matters (MATTERS) a credit check applies it to


# What a credit check (信用核查) is for: the matters of the seed's 事项清单 in which joint
# incentives and punishment apply.
MATTERS = ("procurement", "bidding", "land", "subsidy", "honour", "licence", "inspection")


@dataclass(frozen=True)
class ListMeasures:
    name_zh: str
    name_en: str
    measures: tuple[Measure, ...]


@dataclass(frozen=True)
class MeasuresPolicy:
    kind = "measures"
    version: str
    effective_from: date
    source: str
    lists: Mapping[str, ListMeasures]
    default_months: Mapping[str, int]


@dataclass(frozen=True)
class CalendarPolicy:
    kind = "calendar"
    version: str
    effective_from: date
    source: str
    holidays: frozenset[date]
    adjusted_workdays: frozenset[date]
    years: frozenset[int]
    fallback_holidays: tuple[tuple[int, int], ...]


Policy = Catalogue | GradingPolicy | MeasuresPolicy | CalendarPolicy


def parse_policy(document: Mapping[str, Any]) -> Policy:
    """Validate a policy document; raise PolicyError naming the first field at fault."""
    r = _Reader(document)
    kind = r.choice("kind", KINDS)
    version = r.text("version")
    effective_from = r.day("effective_from")
    source = r.text("source")
    if kind == "catalogue":
        return _catalogue(r, version, effective_from, source)
    if kind == "grading":
        return _grading(r, version, effective_from, source)
    if kind == "measures":
        return _measures(r, version, effective_from, source)
    return _calendar(r, version, effective_from, source)


def _catalogue(r: _Reader, version: str, effective_from: date, source: str) -> Catalogue:
    items: dict[str, CatalogueItem] = {}
    raw_items = r.get("items", list)
    if not raw_items:
        raise PolicyError("items is empty")
    for i, raw in enumerate(raw_items):
        it = _Reader(raw, f"items[{i}]")
        code = it.text("code")
        if not ITEM_CODE.match(code):
            raise PolicyError(f"{it.path('code')} {code!r} is not an item code (A-Z, 0-9, '.', '-')")
        if code in items:
            raise PolicyError(f"{it.path('code')} {code} appears twice")
        department = it.text("department")
        if not AUTHORITY_CODE.match(department):
            raise PolicyError(f"{it.path('department')} {department!r} is not an authority code")
        polarity = it.choice("polarity", POLARITIES)
        severity = it.choice("severity", SEVERITIES, optional=polarity != "negative")
        low = it.months("min_disclosure_months") or 0
        high = it.months("max_disclosure_months", optional=True)
        if high is not None and high < low:
            raise PolicyError(f"items[{i}] ({code}): maximum disclosure period is below the minimum")
        if polarity == "negative" and high is None:
            raise PolicyError(f"items[{i}] ({code}): negative information needs a maximum period")
        items[code] = CatalogueItem(
            code=code, name_zh=it.text("name_zh"), name_en=it.text("name_en"),
            department=department, category=it.choice("category", CATEGORIES),
            polarity=polarity, severity=severity, disclosure=it.choice("disclosure", DISCLOSURES),
            min_disclosure_months=low, max_disclosure_months=high,
            repairable=bool(it.get("repairable", bool, optional=True)),
            field=it.text("field", optional=True),
        )
    retention = r.get("retention_years", int)
    if not 1 <= retention <= 50:
        raise PolicyError("retention_years must be between 1 and 50")
    return Catalogue(version, effective_from, source, retention,
                     bool(r.get("minor_shown_publicly", bool)), items)


def _grading(r: _Reader, version: str, effective_from: date, source: str) -> GradingPolicy:
    negative = r.get("negative_points", dict)
    for severity in SEVERITIES:
        if not isinstance(negative.get(severity), int):
            raise PolicyError(f"negative_points.{severity} must be a whole number")
    bands: list[Band] = []
    for i, raw in enumerate(r.get("bands", list)):
        b = _Reader(raw, f"bands[{i}]")
        bands.append(Band(b.choice("grade", GRADES), b.get("min_points", int, optional=True)))
    if not bands or bands[-1].min_points is not None:
        raise PolicyError("bands must end with a band whose min_points is null")
    thresholds = [b.min_points for b in bands[:-1]]
    numbers = [t for t in thresholds if t is not None]
    if len(numbers) != len(thresholds) or numbers != sorted(numbers, reverse=True):
        raise PolicyError("bands must run from the highest min_points down")
    overrides = r.get("list_overrides", dict)
    for name, rule in overrides.items():
        if name not in LISTS:
            raise PolicyError(f"list_overrides.{name} is not a list ({', '.join(LISTS)})")
        if rule is not None and not (set(rule) <= {"grade", "at_least"}
                                     and all(v in GRADES for v in rule.values())):
            raise PolicyError(f"list_overrides.{name} must be null, {{grade}} or {{at_least}}")
    items = r.get("item_points", dict)
    commitments = r.get("commitment_points", dict)
    if set(commitments) != {"kept", "broken"}:
        raise PolicyError("commitment_points needs kept and broken")
    return GradingPolicy(
        version, effective_from, source, r.get("base_points", int), r.get("max_points", int),
        dict(negative), r.get("positive_points", int), dict(items), dict(commitments),
        tuple(bands), dict(overrides), bool(r.get("counts_under_objection", bool)),
    )


def _measures(r: _Reader, version: str, effective_from: date, source: str) -> MeasuresPolicy:
    lists: dict[str, ListMeasures] = {}
    for name, raw in r.get("lists", dict).items():
        if name not in LISTS:
            raise PolicyError(f"lists.{name} is not a list ({', '.join(LISTS)})")
        lr = _Reader(raw, f"lists.{name}")
        measures = tuple(
            Measure(m.text("code"), m.text("zh"), m.text("en"), _matters(m))
            for m in (_Reader(x, f"lists.{name}.measures[{j}]")
                      for j, x in enumerate(lr.get("measures", list)))
        )
        lists[name] = ListMeasures(lr.text("name_zh"), lr.text("name_en"), measures)
    periods = {name: int(_Reader(raw, f"list_periods.{name}").get("default_months", int))
               for name, raw in r.get("list_periods", dict).items()}
    return MeasuresPolicy(version, effective_from, source, lists, periods)


def _matters(m: _Reader) -> tuple[str, ...]:
    raw = m.get("matters", list, optional=True) or []
    for matter in raw:
        if matter not in MATTERS:
            raise PolicyError(f"{m.path('matters')}: {matter!r} is not a matter "
                              f"({', '.join(MATTERS)})")
    return tuple(raw)


def _calendar(r: _Reader, version: str, effective_from: date, source: str) -> CalendarPolicy:
    holidays: set[date] = set()
    workdays: set[date] = set()
    years: set[int] = set()
    for year, raw in r.get("years", dict).items():
        y = _Reader(raw, f"years.{year}")
        try:
            holidays.update(date.fromisoformat(d) for d in y.get("holidays", list))
            workdays.update(date.fromisoformat(d) for d in y.get("adjusted_workdays", list))
            years.add(int(year))
        except (TypeError, ValueError):
            raise PolicyError(f"years.{year} holds something that is not a date") from None
    fallback = []
    for text in r.get("fallback_holidays", list):
        try:
            month, day = (int(x) for x in str(text).split("-"))
            fallback.append((month, day))
        except ValueError:
            raise PolicyError(f"fallback_holidays entry {text!r} is not MM-DD") from None
    return CalendarPolicy(version, effective_from, source, frozenset(holidays),
                          frozenset(workdays), frozenset(years), tuple(fallback))


# -- which version is in force ----------------------------------------------------------------


@dataclass
class PolicyBook:
    """Published policies by kind; ``in_force(kind, day)`` is the one that governs that day."""

    versions: dict[str, list[Policy]] = field(default_factory=dict)
    _dates: dict[str, list[date]] = field(default_factory=dict)

    def add(self, policy: Policy) -> None:
        """Add a published version; a later publication of the same effective date wins."""
        versions = self.versions.setdefault(policy.kind, [])
        versions.append(policy)
        versions.sort(key=lambda p: p.effective_from)  # stable: publication order within a date
        self._dates[policy.kind] = [p.effective_from for p in versions]

    def in_force(self, kind: str, day: date) -> Policy | None:
        index = bisect_right(self._dates.get(kind, []), day)
        return self.versions[kind][index - 1] if index else None

    def catalogue(self, day: date) -> Catalogue:
        policy = self.in_force("catalogue", day)
        if not isinstance(policy, Catalogue):
            raise NoPolicyInForce("catalogue", day)
        return policy

    def grading(self, day: date) -> GradingPolicy:
        policy = self.in_force("grading", day)
        if not isinstance(policy, GradingPolicy):
            raise NoPolicyInForce("grading", day)
        return policy

    def measures(self, day: date) -> MeasuresPolicy:
        policy = self.in_force("measures", day)
        if not isinstance(policy, MeasuresPolicy):
            raise NoPolicyInForce("measures", day)
        return policy

    def calendar(self, day: date) -> CalendarPolicy:
        policy = self.in_force("calendar", day)
        if not isinstance(policy, CalendarPolicy):
            raise NoPolicyInForce("calendar", day)
        return policy

    def has(self, kind: str, version: str) -> bool:
        return any(p.version == version for p in self.versions.get(kind, []))
