"""The credit workflows on the command line: subjects, records, objections, repair, lists,
commitments. Each takes ``--as AUTHORITY``, flags or ``--input JSON``, and ``--json``."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import click

from cli.common import (
    as_option,
    credit,
    emit,
    fail,
    field_changes,
    input_option,
    json_object,
    json_option,
    on_option,
    parse_day,
    read_input,
    services,
    subject_ref,
)
from domain.identifiers import mask_subject_key
from domain.listings import listing_id
from domain.records import today_in_china
from workflows.services import RecordSubmission


def pick(data: dict[str, Any], name: str, flag: Any, *, required: bool = True) -> Any:
    """A field from its flag, else from ``--input``; missing and required is an error."""
    value = flag if flag is not None and flag != () else data.get(name)
    if required and value in (None, "", ()):
        fail(f"--{name.replace('_', '-')} is required (as a flag or in --input)")
    return value


def day_of(data: dict[str, Any], name: str, flag: str | None) -> date | None:
    text = pick(data, name, flag, required=False)
    return parse_day(f"--{name.replace('_', '-')}", text) if text else None


def as_uuid(option: str, text: str) -> UUID:
    try:
        return UUID(str(text))
    except ValueError:
        fail(f"{option} {text!r} is not an id")


# -- subjects -----------------------------------------------------------------------------------


@credit.group()
def subject() -> None:
    """Register subjects and record changes of name."""


@subject.command("register")
@as_option
@click.option("--subject", "subject_text", help="uscc:CODE, rid:NUMBER or a bare identifier.")
@click.option("--name")
@click.option("--kind", type=click.Choice(["legal_person", "natural_person", "other_organisation"]))
@input_option
@json_option
def subject_register(actor: str, subject_text: str | None, name: str | None, kind: str | None,
                     input_path: str | None, as_json: bool) -> None:
    """Register a subject under its identifier."""
    data = read_input(input_path)
    ref = subject_ref(pick(data, "subject", subject_text))
    with services() as svc:
        registered = svc.register_subject(actor, ref, pick(data, "name", name),
                                          pick(data, "kind", kind, required=False))
    emit(as_json, {"subject": ref.masked(), "kind": registered.kind},
         f"registered {ref.masked()} ({registered.kind.replace('_', ' ')})")


@subject.command("rename")
@as_option
@click.option("--subject", "subject_text")
@click.option("--name")
@click.option("--reason")
@input_option
@json_option
def subject_rename(actor: str, subject_text: str | None, name: str | None, reason: str | None,
                   input_path: str | None, as_json: bool) -> None:
    """Record a subject's change of name."""
    data = read_input(input_path)
    ref = subject_ref(pick(data, "subject", subject_text))
    with services() as svc:
        svc.rename_subject(actor, ref, pick(data, "name", name), pick(data, "reason", reason))
    emit(as_json, {"subject": ref.masked()}, f"renamed {ref.masked()}")


# -- records ------------------------------------------------------------------------------------


@credit.group()
def record() -> None:
    """Submit, correct and revoke credit records."""


@record.command("submit")
@as_option
@click.option("--subject", "subject_text", help="uscc:CODE, rid:NUMBER or a bare identifier.")
@click.option("--subject-name", help="Registers the subject if the ledger does not know it.")
@click.option("--item", "item_code", help="Catalogue item code.")
@click.option("--decision-number")
@click.option("--decision-date", "--on", "decision_date",
              help="The date of the decision, from which the record takes effect (YYYY-MM-DD; "
                   "--on for short; default today, China time).")
@click.option("--summary")
@click.option("--details", help="JSON object of further fields.")
@input_option
@json_option
def record_submit(actor: str, subject_text: str | None, subject_name: str | None,
                  item_code: str | None, decision_number: str | None, decision_date: str | None,
                  summary: str | None, details: str | None, input_path: str | None,
                  as_json: bool) -> None:
    """Submit one credit record as the department that owns its catalogue item."""
    data = read_input(input_path)
    ref = subject_ref(pick(data, "subject", subject_text))
    decided = day_of(data, "decision_date", decision_date) or today_in_china()
    extra = json_object("--details", details) if details else data.get("details") or {}
    with services() as svc:
        record_id = svc.submit_record(RecordSubmission(
            actor=actor, subject=ref, item_code=pick(data, "item_code", item_code),
            decision_number=pick(data, "decision_number", decision_number),
            decision_date=decided, summary=pick(data, "summary", summary), details=extra,
            subject_name=pick(data, "subject_name", subject_name, required=False)))
    emit(as_json, {"record_id": str(record_id), "subject": ref.masked()},
         f"recorded {record_id} about {ref.masked()}")


@record.command("correct")
@click.argument("record_id")
@as_option
@click.option("--reason")
@click.option("--set", "changes", multiple=True, metavar="FIELD=VALUE",
              help="A corrected field (summary, decision_number, decision_date, details).")
@on_option
@input_option
@json_option
def record_correct(record_id: str, actor: str, reason: str | None, changes: tuple[str, ...],
                   on: str | None, input_path: str | None, as_json: bool) -> None:
    """Correct a record: a new signed event that names the version it supersedes."""
    data = read_input(input_path)
    parsed = field_changes(changes) if changes else dict(data.get("changes") or {})
    if isinstance(parsed.get("decision_date"), str):
        parsed["decision_date"] = parse_day("decision_date", parsed["decision_date"])
    rid = as_uuid("RECORD_ID", record_id)
    with services() as svc:
        svc.correct_record(rid, actor=actor, reason=pick(data, "reason", reason), changes=parsed,
                           corrected_on=day_of(data, "on", on))
        version = svc.record(rid).version
    emit(as_json, {"record_id": record_id, "version": version},
         f"corrected {record_id} (now version {version})")


@record.command("revoke")
@click.argument("record_id")
@as_option
@click.option("--reason")
@on_option
@input_option
@json_option
def record_revoke(record_id: str, actor: str, reason: str | None, on: str | None,
                  input_path: str | None, as_json: bool) -> None:
    """Revoke a record (a factual error). It stays in the ledger, void."""
    data = read_input(input_path)
    with services() as svc:
        svc.revoke_record(as_uuid("RECORD_ID", record_id), actor=actor,
                          reason=pick(data, "reason", reason), revoked_on=day_of(data, "on", on))
    emit(as_json, {"record_id": record_id, "revoked": True}, f"revoked {record_id}")


# -- objections ---------------------------------------------------------------------------------


@credit.group()
def objection() -> None:
    """Objections (异议): raise, accept, decline, extend, rule, review; list the overdue."""


@objection.command("raise")
@as_option
@click.option("--subject", "subject_text")
@click.option("--record", "record_text", help="The record objected to.")
@click.option("--listing", "listing_number", help="Or the listing (its number).")
@click.option("--grounds")
@click.option("--agent", help="The agent's name, when an agent raises it for the subject.")
@click.option("--number", "number_", help="The objection's number (default: derived).")
@on_option
@input_option
@json_option
def objection_raise(actor: str, subject_text: str | None, record_text: str | None,
                    listing_number: str | None, grounds: str | None, agent: str | None,
                    number_: str | None, on: str | None, input_path: str | None,
                    as_json: bool) -> None:
    """Receive a subject's objection about one of its records or listings."""
    data = read_input(input_path)
    ref = subject_ref(pick(data, "subject", subject_text))
    record_value = pick(data, "record", record_text, required=False)
    listing_value = pick(data, "listing", listing_number, required=False)
    if bool(record_value) == bool(listing_value):
        fail("name either --record or --listing")
    target_kind, target = (("record", as_uuid("--record", record_value)) if record_value
                           else ("listing", listing_id(listing_value)))
    agent_name = pick(data, "agent", agent, required=False)
    with services() as svc:
        num = svc.raise_objection(
            actor, subject=ref, target_kind=target_kind, target_id=target,
            grounds=pick(data, "grounds", grounds), raised_by="agent" if agent_name else "subject",
            agent=agent_name, raised_on=day_of(data, "on", on),
            number=pick(data, "number", number_, required=False))
    emit(as_json, {"number": num, "status": "raised"}, f"objection {num} raised")


@objection.command("accept")
@click.argument("number_", metavar="NUMBER")
@as_option
@on_option
@json_option
def objection_accept(number_: str, actor: str, on: str | None, as_json: bool) -> None:
    """Accept an objection: its target is marked under objection; the ruling is due in 5
    working days."""
    with services() as svc:
        deadline = svc.accept_objection(actor, number_, parse_day("--on", on))
    emit(as_json, {"number": number_, "status": "accepted", "deadline": deadline.isoformat()},
         f"objection {number_} accepted; ruling due by {deadline.isoformat()}")


@objection.command("decline")
@click.argument("number_", metavar="NUMBER")
@as_option
@click.option("--reason", required=True)
@on_option
@json_option
def objection_decline(number_: str, actor: str, reason: str, on: str | None,
                      as_json: bool) -> None:
    """Decline to accept an objection, giving the reason."""
    with services() as svc:
        svc.decline_objection(actor, number_, reason, parse_day("--on", on))
    emit(as_json, {"number": number_, "status": "declined"}, f"objection {number_} declined")


@objection.command("extend")
@click.argument("number_", metavar="NUMBER")
@as_option
@click.option("--reason", required=True)
@on_option
@json_option
def objection_extend(number_: str, actor: str, reason: str, on: str | None,
                     as_json: bool) -> None:
    """Extend the ruling period once, to 20 working days from acceptance (on a day before the
    first deadline has passed)."""
    with services() as svc:
        deadline = svc.extend_objection(actor, number_, reason, parse_day("--on", on))
    emit(as_json, {"number": number_, "deadline": deadline.isoformat()},
         f"objection {number_} extended; ruling due by {deadline.isoformat()}")


OUTCOMES = ["revoke", "correct", "complete", "end_disclosure", "remove_from_list", "reject"]


@objection.command("rule")
@click.argument("number_", metavar="NUMBER")
@as_option
@click.option("--outcome", type=click.Choice(OUTCOMES))
@click.option("--reasoning")
@click.option("--set", "changes", multiple=True, metavar="FIELD=VALUE",
              help="For correct/complete: a field of the record and its new value.")
@on_option
@input_option
@json_option
def objection_rule(number_: str, actor: str, outcome: str | None, reasoning: str | None,
                   changes: tuple[str, ...], on: str | None, input_path: str | None,
                   as_json: bool) -> None:
    """Rule on an objection; the outcome is carried out on the record or listing at once."""
    data = read_input(input_path)
    parsed = field_changes(changes) if changes else dict(data.get("changes") or {})
    chosen = pick(data, "outcome", outcome)
    with services() as svc:
        svc.rule_objection(actor, number_, outcome=chosen,
                           reasoning=pick(data, "reasoning", reasoning),
                           changes=parsed or None, ruled_on=day_of(data, "on", on))
    emit(as_json, {"number": number_, "status": "ruled", "outcome": chosen},
         f"objection {number_} ruled: {chosen}")


@objection.command("review")
@click.argument("number_", metavar="NUMBER")
@as_option
@click.option("--grounds", help="Request a review (复核) on these grounds.")
@click.option("--result", type=click.Choice(["upheld", "revised"]),
              help="Or rule on a requested review.")
@click.option("--outcome", type=click.Choice(OUTCOMES), help="The revised outcome.")
@click.option("--reasoning")
@click.option("--set", "changes", multiple=True, metavar="FIELD=VALUE")
@on_option
@json_option
def objection_review(number_: str, actor: str, grounds: str | None, result: str | None,
                     outcome: str | None, reasoning: str | None, changes: tuple[str, ...],
                     on: str | None, as_json: bool) -> None:
    """Request a review of a ruling (--grounds), or rule on it (--result)."""
    if bool(grounds) == bool(result):
        fail("give --grounds to request a review, or --result to rule on one")
    with services() as svc:
        if grounds:
            svc.request_review(actor, number_, grounds, parse_day("--on", on))
            status = "review requested"
        else:
            if not reasoning:
                fail("--reasoning is required to rule on a review")
            svc.rule_review(actor, number_, result=str(result), reasoning=reasoning,
                            outcome=outcome, changes=field_changes(changes) or None,
                            ruled_on=parse_day("--on", on))
            status = f"review {result}"
    emit(as_json, {"number": number_, "status": status}, f"objection {number_}: {status}")


@objection.command("overdue")
@click.option("--as-of", "as_of", help="The day (default today).")
@json_option
def objection_overdue(as_of: str | None, as_json: bool) -> None:
    """Objections accepted and not ruled by their deadline."""
    with services() as svc:
        rows = [{**r, "subject": mask_subject_key(r["subject"])}
                for r in svc.overdue_objections(parse_day("--as-of", as_of))]
    emit(as_json, {"overdue": rows},
         "\n".join(f"{r['number']}  deadline {r['deadline']}  {r['subject']}" for r in rows)
         or "no overdue objections")


# -- credit repair ------------------------------------------------------------------------------


@credit.group()
def repair() -> None:
    """Credit repair (信用修复): apply, check, decide."""


@repair.command("apply")
@as_option
@click.option("--record", "record_text")
@click.option("--evidence", multiple=True, help="Evidence of corrected conduct (repeatable).")
@click.option("--commitment", help="The subject's public credit commitment.")
@click.option("--number", "number_")
@on_option
@input_option
@json_option
def repair_apply(actor: str, record_text: str | None, evidence: tuple[str, ...],
                 commitment: str | None, number_: str | None, on: str | None,
                 input_path: str | None, as_json: bool) -> None:
    """Receive an application to repair one record."""
    data = read_input(input_path)
    items = list(evidence) or list(data.get("evidence") or [])
    with services() as svc:
        num = svc.apply_repair(actor, as_uuid("--record", pick(data, "record", record_text)),
                               evidence=items, commitment=pick(data, "commitment", commitment),
                               applied_on=day_of(data, "on", on),
                               number=pick(data, "number", number_, required=False))
        checks = svc.repair_checks(num)
    emit(as_json, {"number": num, "checks": [vars(c) for c in checks]},
         f"repair application {num} received\n" + _checks_text(checks))


def _checks_text(checks: list[Any]) -> str:
    return "\n".join(f"  {'pass' if c.passed else 'FAIL'}  {c.explanation}" for c in checks)


@repair.command("decide")
@click.argument("number_", metavar="NUMBER")
@as_option
@click.option("--approve/--refuse", default=None, help="Approve or refuse the application.")
@click.option("--reason", default="", help="Why an eligible application is refused.")
@on_option
@json_option
def repair_decide(number_: str, actor: str, approve: bool | None, reason: str, on: str | None,
                  as_json: bool) -> None:
    """Approve (ends public display and sharing) or refuse, explained rule by rule."""
    if approve is None:
        fail("give --approve or --refuse")
    with services() as svc:
        checks = svc.decide_repair(actor, number_, approve=approve, reason=reason,
                                   decided_on=parse_day("--on", on))
    decision = "approved" if approve else "refused"
    emit(as_json, {"number": number_, "decision": decision, "checks": [vars(c) for c in checks]},
         f"repair {number_} {decision}\n" + _checks_text(checks))


# -- lists --------------------------------------------------------------------------------------


@credit.group(name="list")
def list_group() -> None:
    """Red and black lists: add and remove (移出)."""


@list_group.command("add")
@as_option
@click.option("--list", "list_name", type=click.Choice(["black", "red"]))
@click.option("--subject", "subject_text")
@click.option("--legal-basis")
@click.option("--basis-record", "basis", multiple=True, help="A record the listing rests on.")
@click.option("--start", "--on", "start",
              help="The day the listing takes effect (YYYY-MM-DD; --on for short; default today, "
                   "China time).")
@click.option("--end", help="Planned end (default: the list's period from the measures).")
@click.option("--notified", help="When the subject was notified (black list: before --start).")
@click.option("--removal-conditions", default=None)
@click.option("--number", "number_")
@input_option
@json_option
def list_add(actor: str, list_name: str | None, subject_text: str | None,
             legal_basis: str | None, basis: tuple[str, ...], start: str | None, end: str | None,
             notified: str | None, removal_conditions: str | None, number_: str | None,
             input_path: str | None, as_json: bool) -> None:
    """Put a subject on the black or red list."""
    data = read_input(input_path)
    begins = day_of(data, "start", start) or today_in_china()
    records = [as_uuid("--basis-record", r) for r in (basis or data.get("basis_records") or [])]
    with services() as svc:
        num = svc.add_listing(
            actor, list_name=pick(data, "list", list_name),
            subject=subject_ref(pick(data, "subject", subject_text)),
            legal_basis=pick(data, "legal_basis", legal_basis), basis_records=records,
            start=begins, planned_end=day_of(data, "end", end),
            notified_on=day_of(data, "notified", notified),
            removal_conditions=pick(data, "removal_conditions", removal_conditions,
                                    required=False) or "",
            number=pick(data, "number", number_, required=False))
        listing = svc.listing(num)
    emit(as_json, {"number": num, "start": listing.start.isoformat(),
                   "planned_end": listing.planned_end.isoformat()},
         f"listed {num} from {listing.start.isoformat()} to {listing.planned_end.isoformat()}")


@list_group.command("remove")
@click.argument("number_", metavar="NUMBER")
@as_option
@click.option("--reason", required=True)
@on_option
@json_option
def list_remove(number_: str, actor: str, reason: str, on: str | None, as_json: bool) -> None:
    """Remove a subject from a list before the planned end."""
    with services() as svc:
        svc.remove_listing(actor, number_, reason=reason, removed_on=parse_day("--on", on))
    emit(as_json, {"number": number_, "removed": True}, f"removed listing {number_}")


# -- commitments --------------------------------------------------------------------------------


@credit.group()
def commitment() -> None:
    """Credit commitments (信用承诺): make, settle."""


@commitment.command("make")
@as_option
@click.option("--subject", "subject_text")
@click.option("--text")
@click.option("--context", default=None)
@click.option("--due", help="When it falls due (YYYY-MM-DD).")
@click.option("--number", "number_")
@on_option
@input_option
@json_option
def commitment_make(actor: str, subject_text: str | None, text: str | None, context: str | None,
                    due: str | None, number_: str | None, on: str | None,
                    input_path: str | None, as_json: bool) -> None:
    """Record a subject's credit commitment."""
    data = read_input(input_path)
    with services() as svc:
        num = svc.make_commitment(
            actor, subject=subject_ref(pick(data, "subject", subject_text)),
            text=pick(data, "text", text),
            context=pick(data, "context", context, required=False) or "",
            made_on=day_of(data, "on", on), due_on=day_of(data, "due", due),
            number=pick(data, "number", number_, required=False))
    emit(as_json, {"number": num}, f"commitment {num} recorded")


@commitment.command("settle")
@click.argument("number_", metavar="NUMBER")
@as_option
@click.option("--kept/--broken", default=None)
@click.option("--note", required=True, help="What was found.")
@on_option
@json_option
def commitment_settle(number_: str, actor: str, kept: bool | None, note: str, on: str | None,
                      as_json: bool) -> None:
    """Record whether a commitment was kept."""
    if kept is None:
        fail("give --kept or --broken")
    with services() as svc:
        svc.settle_commitment(actor, number_, kept=kept, note=note,
                              settled_on=parse_day("--on", on))
    emit(as_json, {"number": number_, "kept": kept},
         f"commitment {number_} {'kept' if kept else 'broken'}")
