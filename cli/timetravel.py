"""Time travel and read models: history, diff, project, rebuild."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from datetime import datetime
from typing import Any

import click

from cli.common import (
    TIME_HELP,
    catch_up_after_commit,
    credit,
    emit,
    opened,
    parse_day,
    parse_time,
    print_table,
    progress_bar,
    purpose_option,
    reader_option,
    reading,
    runner,
    safe_text,
    subject_ref,
    writing,
)
from domain.identifiers import mask_person_name, mask_subject_key
from domain.records import today_in_china
from projections.queries import search_subjects
from projections.schema import TABLES
from workflows.reads import Reads
from workflows.services import CreditServices


def _flags(record: dict[str, Any]) -> str:
    flags = [record["status"]]
    flags += [name for name in ("public", "shared") if record[name]]
    if record["under_objection"]:
        flags.append("under objection " + ",".join(record["objections"]))
    if record["corrected"]:
        flags.append(f"corrected x{record['corrections']}")
    return " ".join(flags)


def render_state(state: dict[str, Any]) -> str:
    grade = state["grade"]
    name = state["name"] or ""
    if state["kind"] == "natural_person":
        name = mask_person_name(name)
    lines = [f"{mask_subject_key(state['subject'])} {name} "
             f"({(state['kind'] or 'unregistered').replace('_', ' ')})",
             f"as of {state['as_of']}, as the ledger knew it at {state['known_at']}"]
    if grade["grade"] is None:
        lines.append(f"no grade: no grading policy was in force on {state['as_of']}")
    else:
        lines.append(f"grade {grade['grade']} ({grade['points']} points, policy "
                     f"{grade['policy']})" + (f"; {grade['override']}" if grade["override"] else ""))
    lines += [f"  {line['points']:+d}  {line['reason']}" for line in grade["explanation"]]
    lines.append(f"records ({len(state['records'])}):")
    lines += [f"  {r['decision_date']}  {r['item_code']:<20} {r['decision_number']}  {_flags(r)}"
              for r in state["records"]]
    for section, fields in SECTION_FIELDS.items():
        items = state[section]
        if items:
            lines.append(f"{section} ({len(items)}):")
            lines += ["  " + _labelled(item, fields) for item in items]
    return "\n".join(lines)


# What each section's line shows: every value after its label; a flag only when it is set.
SECTION_FIELDS = {
    "listings": ("number", "list", "status", "start", "ends_on"),
    "objections": ("number", "status", "deadline", "extended", "outcome", "late", "overdue",
                   "review"),
    "repairs": ("number", "status", "applied_on", "decided_on"),
    "commitments": ("number", "made_on", "due_on", "outcome"),
}


def _labelled(item: dict[str, Any], fields: tuple[str, ...]) -> str:
    shown = []
    for field in fields:
        value = item.get(field)
        if value is None or value is False:
            continue
        label = field.replace("_", " ")
        shown.append(str(value) if field == "number" else label if value is True
                     else f"{label} {value}")
    return "  ".join(shown)


def _known(text: str | None) -> datetime | None:
    return parse_time(text) if text else None


@credit.command()
@click.argument("subject_text", metavar="SUBJECT")
@click.option("--as-of", "as_of", help="The day (YYYY-MM-DD; default today).")
@click.option("--known-at", "known_at",
              help=f"As the ledger knew it at {TIME_HELP}; default now (auditors and the "
                   "credit office).")
@reader_option
@purpose_option
@click.option("--json", "as_json", is_flag=True)
def history(subject_text: str, as_of: str | None, known_at: str | None, reader_text: str,
            purpose: str | None, as_json: bool) -> None:
    """A subject's records, flags, grade and lists on a day, recomputed from its signed events
    (read through the subject index) under the policies in force then: the public file, or
    for an authorised reader the whole file."""
    ref = subject_ref(subject_text)
    with writing() as ledger:
        reads = Reads(CreditServices(ledger))
        state = reads.state(reads.reader(reader_text), ref.key, parse_day("--as-of", as_of),
                            _known(known_at), purpose)
    if as_json:
        click.echo(json.dumps(state, ensure_ascii=False, indent=2))
    else:
        click.echo(safe_text(render_state(state)))


@credit.command()
@click.option("--subject", "subject_text", help="Only the reads of this subject's file.")
@click.option("--since", help=f"Only reads from {TIME_HELP}.")
@click.option("--as", "reader_text", required=True, metavar="READER",
              help="An auditor (auditor[:NAME]) or the credit office.")
@click.option("--json", "as_json", is_flag=True)
def queries(subject_text: str | None, since: str | None, reader_text: str,
            as_json: bool) -> None:
    """The query log: every read beyond the public file (who, whose file, why, when, what was
    returned), signed in the ledger and checked by `credit verify`."""
    subject = subject_ref(subject_text).key if subject_text else None
    with opened(reading()) as ledger:
        reads = Reads(CreditServices(ledger))
        logged = reads.queries(reads.reader(reader_text), subject,
                               parse_time(since) if since else None)
    if as_json or not logged:
        emit(as_json, {"queries": logged}, "no query logged")
        return
    print_table(["at", "reader", "command", "subject", "purpose", "returned"],
                [[q["at"][:19], q["reader"], q["command"], q["subject"] or "", q["purpose"],
                  q["returned"]] for q in logged])


def _labels(*states: dict[str, Any]) -> dict[str, str]:
    """Readable names for the ids in a diff: item and decision number, list and number …"""
    labels: dict[str, str] = {}
    for state in states:
        for r in state["records"]:
            labels[r["id"]] = f"{r['item_code']} {r['decision_number']}"
        for section in ("listings", "objections", "repairs", "commitments"):
            for item in state[section]:
                labels[item["id"]] = item["number"]
    return labels


@credit.command()
@click.argument("subject_text", metavar="SUBJECT")
@click.option("--from", "start", required=True, help="YYYY-MM-DD")
@click.option("--to", "end", help="YYYY-MM-DD (default today)")
@click.option("--known-at", "known_at",
              help=f"As the ledger knew it at {TIME_HELP}; default now (auditors and the "
                   "credit office).")
@reader_option
@purpose_option
@click.option("--json", "as_json", is_flag=True)
def diff(subject_text: str, start: str, end: str | None, known_at: str | None,
         reader_text: str, purpose: str | None, as_json: bool) -> None:
    """What changed about a subject between two days, and the signed events that changed it."""
    ref = subject_ref(subject_text)
    first = parse_day("--from", start)
    last = parse_day("--to", end) or today_in_china()
    assert first is not None
    with writing() as ledger:
        reads = Reads(CreditServices(ledger))
        result = reads.diff(reads.reader(reader_text), ref.key, first, last, _known(known_at),
                            purpose)
    if as_json:
        click.echo(json.dumps({k: v for k, v in result.items() if k not in ("before", "after")},
                              ensure_ascii=False, indent=2, default=str))
        return
    labels = _labels(result["before"], result["after"])
    lines = [f"{mask_subject_key(ref.key)} from {result['from']} to {result['to']}:"]
    lines += [f"  {c['what']} {labels.get(c['id'], c['id'] or '')}"
              f"{' ' + c['field'] if c['field'] else ''}: {c['from']} -> {c['to']}"
              + (f"  (by event {', '.join(str(i) for i in c['events'])})" if c["events"] else "")
              for c in result["changes"]] or ["  no change"]
    if result["by_time"]:
        lines.append("changed by time alone (no event):")
        lines += [f"  {c['on']} {c['what']} {labels.get(c['id'], c['id'])}: {c['change']}"
                  for c in result["by_time"]]
    lines.append(f"signed events in between ({len(result['events'])}):")
    lines += [f"  #{e['notification_id']} {e['effective_on']} {e['event']} by {e['actor']} "
              f"(key {e['kid']}, recorded {e['recorded_at'][:19]})" for e in result["events"]]
    click.echo(safe_text("\n".join(lines)))


@credit.command()
@click.argument("names", nargs=-1, type=click.Choice(list(TABLES)))
@click.option("--follow", is_flag=True, help="Keep running: poll (SQLite) or wake on NOTIFY.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls.")
@click.option("--status", "show_status", is_flag=True, help="Show positions and lag only.")
@click.option("--json", "as_json", is_flag=True)
def project(names: tuple[str, ...], follow: bool, interval: float, show_status: bool,
            as_json: bool) -> None:
    """Bring the read models up to date (all of them, or NAMES)."""
    with opened() as ledger:
        run = runner(ledger)
        if show_status:
            rows = run.status()
            stored_faults = run.faults()
            if as_json:
                emit(as_json, {"projections": rows, "faults": stored_faults}, "")
            else:
                for f in stored_faults:
                    click.echo(f"fault: {f['projection']} could not store {f['subject']} at "
                               f"position {f['position']}: {f['reason']} (fix, then `credit "
                               "rebuild`)", err=True)
                print_table(["read model", "generation", "position", "as of", "behind"],
                            [[r["name"], r["generation"], r["position"], r["as_of"], r["behind"]]
                             for r in rows])
            return
        if follow:
            click.echo(f"following {', '.join(names or TABLES)} (Ctrl-C or SIGTERM to stop)",
                       err=True)
            # SIGTERM (a service manager stopping it) stops it as Ctrl-C does: a step is one
            # transaction, so one interrupted is rolled back and nothing is left half applied
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            with contextlib.suppress(KeyboardInterrupt):
                run.follow(list(names) or None, interval)
            click.echo("stopped following", err=True)
            return
        started = time.perf_counter()
        with progress_bar("projecting", None) as progress:
            positions = run.catch_up(list(names) or None, progress=progress)
    emit(as_json, {"positions": positions},
         f"read models up to date in {time.perf_counter() - started:.1f}s: "
         + ", ".join(f"{k} at {v}" for k, v in positions.items()))


@credit.command()
@click.argument("names", nargs=-1, type=click.Choice(list(TABLES)))
@click.option("--workers", type=click.IntRange(1, 64),
              help="Processes computing subjects (default: one per CPU from 40,000 events, "
                   "else one). Each dies with the command; a rebuild killed half way is "
                   "started afresh by the next.")
@click.option("--json", "as_json", is_flag=True)
def rebuild(names: tuple[str, ...], workers: int | None, as_json: bool) -> None:
    """Rebuild read models from the signed events (all, or NAMES): into new tables, while the
    old ones serve, switched at the end."""
    results = {}
    with opened() as ledger:
        run = runner(ledger)
        total = ledger.event_count()
        for name in names or tuple(TABLES):
            started = time.perf_counter()
            with progress_bar(f"rebuilding {name}", total if name == "subjects" else None) as bar:
                step = run.rebuild(name, progress=bar, workers=workers)
            seconds = time.perf_counter() - started
            results[name] = {"position": step.position, "seconds": round(seconds, 2),
                             "events_per_s": round(total / seconds) if name == "subjects" and
                             seconds else None}
    emit(as_json, results, "\n".join(
        f"rebuilt {name}: position {r['position']} in {r['seconds']}s"
        + (f" ({r['events_per_s']} events/s)" if r["events_per_s"] else "")
        for name, r in results.items()))



@credit.command()
@click.argument("query")
@click.option("--limit", default=20, show_default=True)
@reader_option
@purpose_option
@click.option("--json", "as_json", is_flag=True)
def lookup(query: str, limit: int, reader_text: str, purpose: str | None, as_json: bool) -> None:
    """Find enterprises by name, partial name or full code in the read models. A natural person
    is found only by the full ID number, by an authorised reader stating a purpose (logged)."""
    with writing() as ledger:
        run = runner(ledger)
        run.setup()
        if ledger.settings.projections == "embedded":
            catch_up_after_commit(ledger)  # what any command wrote before is found
        reads = Reads(CreditServices(ledger))
        rows = reads.lookup(reads.reader(reader_text), query, purpose,
                            lambda text, people: search_subjects(run.engine, text, people,
                                                                 limit))
    if as_json or not rows:
        emit(as_json, {"subjects": rows}, "no subject found")
        return
    print_table(["subject", "name", "grade", "lists", "public records"],
                [[r["subject"], r["name"] or "", f"{r['grade']} ({r['points']})",
                  " ".join(name for name, on in (("black list", r["black_listed"]),
                                                 ("red list", r["red_listed"])) if on),
                  r["public_records"]] for r in rows])
