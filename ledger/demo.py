"""The demo city: a deterministic synthetic Lin'an written into an empty ledger.

Same ``subjects`` and ``seed`` → the same events, byte for byte (timestamps included: every save
runs on a frozen clock, and signatures are deterministic Ed25519). Only the keys differ from one
key folder to another.

What it holds: the platform, the credit office and the departments registered on 2016-01-04;
enterprises (unified social credit codes, division 330185 before the 2017 change, 330112 after)
and people (resident ID numbers); records from every department from 2016 to 2026; corrections;
a yearly rotation of the tax bureau's key.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from domain import clock
from domain.authorities import LINAN_AUTHORITIES
from domain.base import CHINA_TIME
from domain.identifiers import (
    USCC_ALPHABET,
    SubjectRef,
    resident_id_check_char,
    uscc_check_char,
)
from ledger.application import CreditLedger, RecordSubmission

START = date(2016, 1, 4)
END = date(2026, 10, 30)
DIVISION_BEFORE_2017 = "330185"  # 临安市 (county-level city) until 2017
DIVISION_FROM_2017 = "330112"  # 临安区

# Provisional item codes per department (issue 3 replaces these with the published catalogue).
ITEMS: dict[str, tuple[tuple[str, str], ...]] = {
    "tax": (("TAX-ARREARS", "欠缴税款"), ("TAX-PENALTY", "税务行政处罚"),
            ("TAX-GRADE-A", "纳税信用A级")),
    "court": (("COURT-DEBTOR", "失信被执行人"), ("COURT-JUDGMENT", "生效判决未履行")),
    "market": (("MKT-PENALTY", "市场监管行政处罚"), ("MKT-ABNORMAL", "列入经营异常名录")),
    "env": (("ENV-PENALTY", "环境违法行政处罚"), ("ENV-GRADE", "环境信用评价")),
    "labour": (("LAB-WAGE-ARREARS", "拖欠劳动报酬"), ("LAB-SOCIAL-INS", "未依法缴纳社会保险")),
    "housing": (("HOUSING-PENALTY", "建设领域行政处罚"),),
    "safety": (("SAFETY-PENALTY", "安全生产行政处罚"),),
    "transport": (("TRANSPORT-PENALTY", "交通运输行政处罚"),),
    "water": (("WATER-ARREARS", "欠缴水费"),),
    "power": (("POWER-ARREARS", "欠缴电费"),),
    "fire": (("FIRE-PENALTY", "消防行政处罚"),),
    "resources": (("LAND-PENALTY", "土地违法行政处罚"),),
}
PERSON_DEPARTMENTS = ("court", "labour", "water", "power", "transport", "tax")
ENTERPRISE_WORDS = ("天目", "青山", "锦城", "昌化", "於潜", "太湖源", "玲珑", "高虹", "板桥", "横畈",
                    "山核桃", "竹海", "笋干", "白茶", "云制造", "科创", "电子", "照明", "建材")
ENTERPRISE_KINDS = ("农业开发有限公司", "食品有限公司", "建设工程有限公司", "电子科技有限公司",
                    "旅游开发有限公司", "贸易有限公司", "新材料股份有限公司", "物流有限公司")


@dataclass(frozen=True)
class DemoSubject:
    ref: SubjectRef
    name: str


@dataclass(frozen=True)
class DemoEvent:
    """One thing the demo does on a day: submit a record, or correct one."""

    day: date
    submission: RecordSubmission | None = None
    correct: tuple[RecordSubmission, str, dict[str, object]] | None = None


@dataclass
class DemoSummary:
    subjects: int = 0
    records: int = 0
    corrections: int = 0
    key_rotations: int = 0
    events: int = 0


def organisation_code(rng: random.Random) -> str:
    """A GB 11714 organisation code: 8 digits and a check character."""
    body = "".join(rng.choice("0123456789") for _ in range(8))
    total = sum(int(c) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    check = 11 - total % 11
    return body + ("X" if check == 10 else "0" if check == 11 else str(check))


def make_uscc(rng: random.Random, division: str) -> str:
    first17 = "91" + division + organisation_code(rng)
    assert all(c in USCC_ALPHABET for c in first17)
    return first17 + uscc_check_char(first17)


def make_resident_id(rng: random.Random, division: str) -> str:
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
    first17 = division + born.strftime("%Y%m%d") + f"{rng.randrange(1000):03d}"
    return first17 + resident_id_check_char(first17)


def subjects(count: int, rng: random.Random) -> list[DemoSubject]:
    out: list[DemoSubject] = []
    seen: set[str] = set()
    while len(out) < count:
        division = DIVISION_BEFORE_2017 if rng.random() < 0.4 else DIVISION_FROM_2017
        if rng.random() < 0.7:
            ref = SubjectRef("uscc", make_uscc(rng, division))
            name = "杭州" + rng.choice(ENTERPRISE_WORDS) + rng.choice(ENTERPRISE_KINDS)
        else:
            ref = SubjectRef("rid", make_resident_id(rng, division))
            name = "居民"
        if ref.key not in seen:
            seen.add(ref.key)
            out.append(DemoSubject(ref, name))
    return out


def plan(count: int, seed: int) -> Iterator[DemoEvent]:
    """The demo's records and corrections, in the order they are recorded."""
    rng = random.Random(seed)
    span = (END - START).days
    events: list[DemoEvent] = []
    numbers: dict[tuple[str, int], int] = {}
    for subject in subjects(count, rng):
        departments = PERSON_DEPARTMENTS if subject.ref.is_person else tuple(ITEMS)
        for _ in range(rng.randint(1, 6)):
            department = rng.choice(departments)
            item_code, title = rng.choice(ITEMS[department])
            decided = START + timedelta(days=rng.randrange(span))
            n = numbers[(department, decided.year)] = numbers.get((department, decided.year), 0) + 1
            submission = RecordSubmission(
                actor=department, subject=subject.ref, item_code=item_code,
                decision_number=f"临{department}〔{decided.year}〕{n}号",
                decision_date=decided, summary=f"{title}:{subject.name}",
                details={"amount": f"{rng.randrange(100, 500000)}.00"},
            )
            recorded = min(decided + timedelta(days=rng.randint(0, 5)), END)
            events.append(DemoEvent(recorded, submission=submission))
            if rng.random() < 0.1:
                later = min(recorded + timedelta(days=rng.randint(3, 60)), END)
                changes: dict[str, object] = {"summary": f"{title}(更正):{subject.name}"}
                events.append(DemoEvent(later, correct=(submission, "笔误更正", changes)))
    events.sort(key=lambda e: (e.day, e.correct is not None))
    return iter(events)


def at_office_hours(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=CHINA_TIME).astimezone(UTC)


def build(ledger: CreditLedger, count: int, seed: int,
          progress: Callable[[int], None] | None = None) -> DemoSummary:
    """Write the demo city into an empty ledger."""
    summary = DemoSummary()
    with clock.frozen_at(at_office_hours(START, 9)):
        ledger.initialise(LINAN_AUTHORITIES[0])
        for profile in LINAN_AUTHORITIES[1:]:
            ledger.register_authority(profile)
    summary.subjects = count
    record_ids: dict[tuple[str, str, str, str], UUID] = {}
    rotated_years: set[int] = set()
    batch: list[RecordSubmission] = []
    day: date | None = None

    def flush() -> None:
        if batch and day is not None:
            with clock.frozen_at(at_office_hours(day)):
                ids = ledger.submit_records(batch)
            for s, rid in zip(batch, ids, strict=True):
                record_ids[(s.actor, s.item_code, s.decision_number, s.subject.key)] = rid
            summary.records += len(batch)
            if progress is not None:
                progress(summary.records)
            batch.clear()

    for event in plan(count, seed):
        if event.day != day:
            flush()
            day = event.day
            if day.year > START.year and day.year not in rotated_years:
                rotated_years.add(day.year)
                with clock.frozen_at(at_office_hours(day, 8)):
                    ledger.rotate_key("tax")
                summary.key_rotations += 1
        if event.submission is not None:
            batch.append(event.submission)
        elif event.correct is not None:
            flush()
            original, reason, changes = event.correct
            rid = record_ids[(original.actor, original.item_code, original.decision_number,
                              original.subject.key)]
            with clock.frozen_at(at_office_hours(event.day, 15)):
                ledger.correct_record(rid, actor=original.actor, reason=reason, changes=changes)
            summary.corrections += 1
    flush()
    summary.events = ledger.event_count()
    return summary
