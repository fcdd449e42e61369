"""The demo city: a deterministic synthetic Lin'an written into an empty ledger.

Same ``subjects`` and ``seed`` → the same events, byte for byte apart from the keys (every save runs
on a frozen clock; Ed25519 signatures are deterministic per key). It holds ten years (2016-2026):
- the platform, the credit office and twelve departments, registered on 2016-01-04, the tax
  bureau's key rotated every year;
- the bundled policies published when they were: catalogue 2016, 2019, 2023 and 2026, grading
  2016 and 2023, the list measures 2016 and 2026 (which names each measure's matters) and the
  working-day calendar;
- enterprises (division 330185 before the 2017 change, 330112 after) and people, each registered
  with its first record; records from every department under the items they own; corrections and
  revocations; objections in every state (raised, declined, accepted, overdue, extended, ruled with
  every outcome, reviewed); repairs approved and refused; black and red listings, removed and
  expired; commitments kept and broken.
Each day's actions are saved in one transaction (a unit of work); no action depends on another of
the same day.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from domain import clock
from domain.authorities import CREDIT_OFFICE, LINAN_AUTHORITIES
from domain.clock import CHINA_TIME
from domain.identifiers import (
    USCC_ALPHABET,
    SubjectRef,
    resident_id_check_char,
    uscc_check_char,
)
from domain.records import record_id
from ledger.application import CreditLedger
from workflows.policy_files import bundled_policies
from workflows.services import CreditServices, RecordSubmission

START = date(2016, 1, 4)
END = date(2026, 10, 30)
DIVISION_BEFORE_2017 = "330185"  # 临安市 (county-level city) until 2017
DIVISION_FROM_2017 = "330112"  # 临安区
# When each bundled policy version was published (a few days before it took effect).
PUBLISHED = {("catalogue", "2019.1"): date(2019, 6, 20), ("grading", "2023.1"): date(2022, 12, 15),
             ("catalogue", "2023.1"): date(2023, 4, 20), ("catalogue", "2026.1"): date(2026, 3, 20),
             ("measures", "2026.1"): date(2026, 10, 20)}
PERSON_DEPARTMENTS = ("court", "labour", "water", "power", "transport", "tax")
ENTERPRISE_WORDS = ("天目", "青山", "锦城", "昌化", "於潜", "太湖源", "玲珑", "高虹", "板桥", "横畈",
                    "山核桃", "竹海", "笋干", "白茶", "云制造", "科创", "电子", "照明", "建材")
ENTERPRISE_KINDS = ("农业开发有限公司", "食品有限公司", "建设工程有限公司", "电子科技有限公司",
                    "旅游开发有限公司", "贸易有限公司", "新材料股份有限公司", "物流有限公司")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华慧建国平红玉兰春霞晨阳宇浩"


@dataclass
class DemoSummary:
    subjects: int = 0
    records: int = 0
    corrections: int = 0
    revocations: int = 0
    objections: int = 0
    repairs: int = 0
    listings: int = 0
    commitments: int = 0
    policies: int = 0
    key_rotations: int = 0
    events: int = 0


@dataclass(order=True)
class Action:
    day: date
    order: int
    kind: str = field(compare=False)
    args: dict[str, Any] = field(compare=False, default_factory=dict)


def organisation_code(rng: random.Random) -> str:
    """A GB 11714 organisation code: 8 digits and a check character."""
    body = "".join(rng.choice("0123456789") for _ in range(8))
    total = sum(int(c) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    check = 11 - total % 11
    return body + ("X" if check == 10 else "0" if check == 11 else str(check))


def make_uscc(rng: random.Random, division: str) -> str:
    first17 = "91" + division + organisation_code(rng)
    if not all(c in USCC_ALPHABET for c in first17):
        raise ValueError(first17)
    return first17 + uscc_check_char(first17)


def make_resident_id(rng: random.Random, division: str) -> str:
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
    first17 = division + born.strftime("%Y%m%d") + f"{rng.randrange(1000):03d}"
    return first17 + resident_id_check_char(first17)


def at_office_hours(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=CHINA_TIME).astimezone(UTC)


class Planner:
    """Plans the demo's actions, subject by subject, with one random generator."""

    def __init__(self, count: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.count = count
        self.actions: list[Action] = []
        self.serial = 0
        catalogue = next(d for d in bundled_policies() if d["kind"] == "catalogue")
        self.items: dict[str, list[dict[str, Any]]] = {}
        for item in catalogue["items"]:
            self.items.setdefault(item["department"], []).append(item)
        self.numbers: dict[tuple[str, int], int] = {}

    def add(self, day: date, kind: str, **args: Any) -> None:
        self.serial += 1
        if day <= END:
            self.actions.append(Action(day, self.serial, kind, args))

    def day_after(self, day: date, low: int, high: int) -> date:
        return day + timedelta(days=self.rng.randint(low, high))

    def plan(self) -> list[Action]:
        seen: set[str] = set()
        while len(seen) < self.count:
            ref, name = self.subject()
            if ref.key not in seen:
                seen.add(ref.key)
                self.plan_subject(ref, name)
        self.actions.sort()
        return self.actions

    def subject(self) -> tuple[SubjectRef, str]:
        rng = self.rng
        division = DIVISION_BEFORE_2017 if rng.random() < 0.4 else DIVISION_FROM_2017
        if rng.random() < 0.7:
            name = "杭州" + rng.choice(ENTERPRISE_WORDS) + rng.choice(ENTERPRISE_KINDS)
            return SubjectRef("uscc", make_uscc(rng, division)), name
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
        return SubjectRef("rid", make_resident_id(rng, division)), name

    def plan_subject(self, ref: SubjectRef, name: str) -> None:
        rng = self.rng
        span = (END - START).days
        departments = PERSON_DEPARTMENTS if ref.is_person else tuple(self.items)
        positives: list[tuple[date, str]] = []
        serious: list[tuple[date, str]] = []
        recorded_days: list[date] = []
        for index in range(rng.randint(1, 6)):
            department = rng.choice(departments)
            choices = [i for i in self.items[department]
                       if not (ref.is_person and i["polarity"] != "negative")]
            if not choices:
                continue
            item = rng.choice(choices)
            decided = START + timedelta(days=rng.randrange(span - 30))
            n = self.numbers[(department, decided.year)] = self.numbers.get(
                (department, decided.year), 0) + 1
            submission = RecordSubmission(
                actor=department, subject=ref, item_code=item["code"],
                decision_number=f"临{department}〔{decided.year}〕{n}号", decision_date=decided,
                summary=f"{item['name_zh']}:{name if not ref.is_person else '当事人'}",
                details={"amount": f"{rng.randrange(100, 500000)}.00"}, subject_name=name)
            recorded = self.day_after(decided, 0, 5)
            recorded_days.append(recorded)
            self.add(recorded, "submit", submission=submission)
            rid = str(record_id(department=department, item_code=item["code"],
                                decision_number=submission.decision_number,
                                subject_key=ref.key))
            if item["polarity"] == "positive":
                positives.append((recorded, rid))
                continue
            if item["polarity"] != "negative":
                continue
            if item["severity"] == "serious":
                serious.append((recorded, rid))
            roll = rng.random()
            if roll < 0.08:
                self.add(self.day_after(recorded, 3, 60), "correct", record=rid, actor=department,
                         changes={"summary": f"{item['name_zh']}(更正)"})
            elif roll < 0.10:
                self.add(self.day_after(recorded, 3, 60), "revoke", record=rid, actor=department)
            elif roll < 0.20:
                self.plan_objection(ref, rid, recorded, index)
            elif roll < 0.30 and item["repairable"]:
                self.plan_repair(ref, rid, decided, recorded, item)
        if serious and not ref.is_person and rng.random() < 0.25:
            self.plan_listing(ref, "black", serious[0])
        elif positives and not serious and not ref.is_person and rng.random() < 0.25:
            self.plan_listing(ref, "red", positives[0])
        if recorded_days and rng.random() < 0.08:
            made = max(START + timedelta(days=rng.randrange(span - 400)),
                       min(recorded_days) + timedelta(days=1))
            self.plan_commitment(ref, made, "行政审批告知承诺", kept_rate=0.7)

    def plan_commitment(self, ref: SubjectRef, made: date, context: str, kept_rate: float) -> None:
        number = f"CN-{made.year}-{self.serial:07d}"
        self.add(made, "commitment.make", subject=ref, number=number, context=context)
        if self.rng.random() < 0.85:
            self.add(self.day_after(made, 150, 250), "commitment.settle", number=number,
                     kept=self.rng.random() < kept_rate)

    def plan_objection(self, ref: SubjectRef, rid: str, recorded: date, index: int) -> None:
        rng = self.rng
        raised = self.day_after(recorded, 10, 200)
        number = f"YY-{raised.year}-{self.serial:07d}"
        self.add(raised, "objection.raise", subject=ref, record=rid, number=number,
                 agent=rng.random() < 0.2)
        fate = rng.choices(
            ["raised", "declined", "open", "reject", "correct", "complete", "revoke",
             "end_disclosure", "extended"],
            weights=[3, 5, 4, 30, 12, 5, 10, 6, 10])[0]
        if fate == "raised":
            return
        accepted = self.day_after(raised, 1, 3)
        if fate == "declined":
            self.add(accepted, "objection.decline", number=number)
            return
        self.add(accepted, "objection.accept", number=number)
        if fate == "open":
            return
        ruled = self.day_after(accepted, 2, 7)
        outcome = fate
        if fate == "extended":
            self.add(self.day_after(accepted, 1, 2), "objection.extend", number=number)
            ruled = self.day_after(accepted, 10, 25)
            outcome = rng.choice(["reject", "correct", "revoke"])
        self.add(ruled, "objection.rule", number=number, outcome=outcome)
        if rng.random() < 0.1:
            asked = self.day_after(ruled, 3, 15)
            self.add(asked, "objection.review", number=number)
            revise = outcome == "reject" and rng.random() < 0.5
            self.add(self.day_after(asked, 5, 15), "objection.review_ruling", number=number,
                     revise=revise)

    def plan_repair(self, ref: SubjectRef, rid: str, decided: date, recorded: date,
                    item: dict[str, Any]) -> None:
        rng = self.rng
        applied = self.day_after(recorded, 60, 700)
        number = f"XF-{applied.year}-{self.serial:07d}"
        self.add(applied, "repair.apply", record=rid, number=number)
        self.add(self.day_after(applied, 5, 20), "repair.decide", number=number)
        if rng.random() < 0.6:
            self.plan_commitment(ref, self.day_after(applied, 1, 3), f"信用修复 {number}",
                                 kept_rate=0.9)

    def plan_listing(self, ref: SubjectRef, list_name: str, basis: tuple[date, str]) -> None:
        rng = self.rng
        start = self.day_after(basis[0], 30, 90)
        number = f"MD-{list_name}-{start.year}-{self.serial:07d}"
        self.add(start, "list.add", subject=ref, list_name=list_name, record=basis[1],
                 number=number)
        if rng.random() < 0.3:
            self.add(self.day_after(start, 60, 500), "list.remove", number=number)


class Runner:
    """Carries out the plan through the credit services, day by day."""

    def __init__(self, ledger: CreditLedger, summary: DemoSummary) -> None:
        self.ledger = ledger
        self.services = CreditServices(ledger)
        self.summary = summary

    def run_day(self, day: date, actions: list[Action]) -> None:
        submissions = [a.args["submission"] for a in actions if a.kind == "submit"]
        with clock.frozen_at(at_office_hours(day)), self.ledger.unit_of_work():
            if submissions:
                self.services.submit_records(submissions)
                self.summary.records += len(submissions)
            for action in actions:
                if action.kind != "submit":
                    getattr(self, "do_" + action.kind.replace(".", "_"))(day, **action.args)

    def do_correct(self, day: date, record: str, actor: str, changes: dict[str, Any]) -> None:
        self.services.correct_record(_uuid(record), actor=actor, reason="笔误更正", changes=changes)
        self.summary.corrections += 1

    def do_revoke(self, day: date, record: str, actor: str) -> None:
        self.services.revoke_record(_uuid(record), actor=actor, reason="据以认定的事实有误,撤销")
        self.summary.revocations += 1

    def do_objection_raise(self, day: date, subject: SubjectRef, record: str, number: str,
                           agent: bool) -> None:
        self.services.raise_objection(
            CREDIT_OFFICE, subject=subject, target_kind="record", target_id=_uuid(record),
            grounds="信息记录有误,申请更正", raised_by="agent" if agent else "subject",
            agent="代理人(律师事务所)" if agent else None, raised_on=day, number=number)
        self.summary.objections += 1

    def do_objection_decline(self, day: date, number: str) -> None:
        self.services.decline_objection(CREDIT_OFFICE, number, "异议人非信息主体或其代理人")

    def do_objection_accept(self, day: date, number: str) -> None:
        self.services.accept_objection(CREDIT_OFFICE, number, accepted_on=day)

    def do_objection_extend(self, day: date, number: str) -> None:
        self.services.extend_objection(CREDIT_OFFICE, number, "情况复杂,需向提供单位核实")

    def do_objection_rule(self, day: date, number: str, outcome: str) -> None:
        changes = {"summary": "核实后更正的记录摘要"} if outcome == "correct" else (
            {"details": {"note": "补充遗漏信息"}} if outcome == "complete" else None)
        self.services.rule_objection(CREDIT_OFFICE, number, outcome=outcome,
                                     reasoning="经核实作出处理", changes=changes, ruled_on=day)

    def do_objection_review(self, day: date, number: str) -> None:
        self.services.request_review(CREDIT_OFFICE, number, "对异议处理结果不服,申请复核",
                                     requested_on=day)

    def do_objection_review_ruling(self, day: date, number: str, revise: bool) -> None:
        objection = self.services.objection(number)
        if objection.status != "ruled" or objection.review_status != "requested":
            return
        if revise and objection.target_kind == "record":
            self.services.rule_review(CREDIT_OFFICE, number, result="revised",
                                      reasoning="复核认定原记录确有错误", outcome="revoke",
                                      ruled_on=day)
        else:
            self.services.rule_review(CREDIT_OFFICE, number, result="upheld",
                                      reasoning="维持原处理结果", ruled_on=day)

    def do_repair_apply(self, day: date, record: str, number: str) -> None:
        self.services.apply_repair(
            CREDIT_OFFICE, _uuid(record), evidence=["已履行行政处罚决定", "已完成整改"],
            commitment="本单位承诺依法诚信经营,如有失信行为愿接受惩戒", applied_on=day,
            number=number)
        self.summary.repairs += 1

    def do_repair_decide(self, day: date, number: str) -> None:
        eligible = all(c.passed for c in self.services.repair_checks(number))
        self.services.decide_repair(CREDIT_OFFICE, number, approve=eligible,
                                    reason="" if eligible else "不符合修复条件", decided_on=day)

    def do_list_add(self, day: date, subject: SubjectRef, list_name: str, record: str,
                    number: str) -> None:
        from domain.listings import ListingRuleBroken
        try:
            self.services.add_listing(
                CREDIT_OFFICE, list_name=list_name, subject=subject,
                legal_basis="《浙江省公共信用信息管理条例》第二十四条" if list_name == "black"
                else "临政函〔2015〕108号 守信激励", basis_records=[_uuid(record)], start=day,
                notified_on=day - timedelta(days=10) if list_name == "black" else None,
                removal_conditions="履行法定义务、纠正失信行为满一年" if list_name == "black" else "",
                number=number)
            self.summary.listings += 1
        except ListingRuleBroken:
            pass  # the basis record was revoked, repaired or ruled out meanwhile

    def do_list_remove(self, day: date, number: str) -> None:
        from ledger.errors import NotFound
        try:
            listing = self.services.listing(number)
        except NotFound:
            return
        if listing.removed_on is None and listing.start <= day < listing.planned_end:
            self.services.remove_listing(CREDIT_OFFICE, number, reason="已履行义务,提前移出",
                                         removed_on=day)

    def do_commitment_make(self, day: date, subject: SubjectRef, number: str,
                           context: str) -> None:
        self.services.make_commitment(CREDIT_OFFICE, subject=subject,
                                      text="按期补齐材料、依法诚信经营", context=context,
                                      made_on=day, due_on=day + timedelta(days=180),
                                      number=number)
        self.summary.commitments += 1

    def do_commitment_settle(self, day: date, number: str, kept: bool) -> None:
        self.services.settle_commitment(CREDIT_OFFICE, number, kept=kept,
                                        note="经核查" + ("已履行承诺" if kept else "未履行承诺"),
                                        settled_on=day)


def _uuid(text: str) -> Any:
    from uuid import UUID
    return UUID(text)


def holds_city(ledger: CreditLedger, count: int, seed: int) -> bool:
    """Whether the ledger holds exactly the records of the demo city of this size and seed (as
    planned again: the plan is deterministic), and no others."""
    planned = {record_id(department=s.actor, item_code=s.item_code,
                         decision_number=s.decision_number, subject_key=s.subject.key)
               for s in (a.args["submission"] for a in Planner(count, seed).plan()
                         if a.kind == "submit")}
    return (ledger.aggregate_count("CreditRecord") == len(planned)
            and ledger.existing(planned) == planned)


def build(ledger: CreditLedger, count: int, seed: int,
          progress: Callable[[int], None] | None = None) -> DemoSummary:
    """Write the demo city into an empty ledger."""
    summary = DemoSummary(subjects=count)
    services = CreditServices(ledger)
    with clock.frozen_at(at_office_hours(START, 9)):
        ledger.initialise(LINAN_AUTHORITIES[0])
        for profile in LINAN_AUTHORITIES[1:]:
            ledger.register_authority(profile)
        summary.policies += len(services.publish_bundled(until=START))
    runner = Runner(ledger, summary)
    days: dict[date, list[Action]] = {}
    for action in Planner(count, seed).plan():
        days.setdefault(action.day, []).append(action)
    done = 0
    day = START
    while day <= END:
        if day.month == 1 and day.day == 1:
            with clock.frozen_at(at_office_hours(day, 8)):
                ledger.rotate_key("tax")
            summary.key_rotations += 1
        for (kind, version), published in PUBLISHED.items():
            if published == day:
                document = next(d for d in bundled_policies()
                                if d["kind"] == kind and d["version"] == version)
                with clock.frozen_at(at_office_hours(day, 9)):
                    services.publish_policy(CREDIT_OFFICE, document)
                summary.policies += 1
        todays = days.pop(day, [])
        if todays:
            runner.run_day(day, todays)
            done += len(todays)
            if progress is not None:
                progress(done)
        day += timedelta(days=1)
    summary.events = ledger.event_count()
    return summary
