"""The one `credit` command. It parses, wires and prints; the work is done in the packages."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, NoReturn
from uuid import UUID

import click
from eventsourcing.persistence import PersistenceError
from sqlalchemy import create_engine, inspect

from domain import clock
from domain.authorities import LINAN_AUTHORITIES, AuthorityProfile
from domain.base import CHINA_TIME, DomainError
from domain.identifiers import InvalidIdentifier, parse_subject
from domain.records import today_in_china
from keys.registry import KeyRegistryError
from keys.signer import fingerprint, public_key_from_pem
from keys.store import KeyStoreError
from ledger import demo as demo_city
from ledger import tables
from ledger.application import EVENTS_TABLE, CreditLedger, LedgerError, RecordSubmission
from ledger.mapper import UnsignableEvent
from ledger.recorder import LedgerCorrupted
from ledger.settings import Settings
from ledger.storage import StoreUnavailable, prepare_database, redacted
from ledger.verify import LedgerVerifier

DEV_PASSPHRASE = "credit-ledger-demo-only-NOT-FOR-PRODUCTION"

# Errors that are the user's input or environment, reported as one sentence; anything else is a
# bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    LedgerError, DomainError, KeyStoreError, KeyRegistryError, StoreUnavailable,
    LedgerCorrupted, InvalidIdentifier, UnsignableEvent, PersistenceError,
)


class CreditGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            fail(str(exc))


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str) if as_json else text)


def settings() -> Settings:
    return Settings.from_env()


@contextmanager
def opened(config: Settings | None = None) -> Iterator[CreditLedger]:
    ledger = CreditLedger(config or settings())
    try:
        yield ledger
    finally:
        ledger.close()


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal (rate and time left); silence elsewhere."""
    if not sys.stderr.isatty():
        yield lambda done: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def parse_time(text: str) -> datetime:
    """An ISO date or date-time; without a timezone it is read as China time (UTC+8)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=CHINA_TIME)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO date or date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA_TIME)


@click.group(cls=CreditGroup, context_settings={"help_option_names": ["-h", "--help"]})
def credit() -> None:
    """信用临安 credit ledger: signed, append-only, verifiable.

    Configuration comes from CREDIT_DATABASE_URL (default sqlite:///var/credit.db),
    CREDIT_KEYS_DIR (default var/keys), CREDIT_KEY_PASSPHRASE and CREDIT_LOG_ORIGIN.
    """


# -- init, demo ---------------------------------------------------------------------------------


@credit.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init(as_json: bool) -> None:
    """Create the ledger: the platform key, then every Lin'an authority with its key."""
    with opened() as ledger:
        kids = [ledger.initialise(LINAN_AUTHORITIES[0])]
        kids += [ledger.register_authority(p) for p in LINAN_AUTHORITIES[1:]]
        url = redacted(ledger.settings.database_url)
        emit(as_json, {"database": url, "keys": kids, "events": ledger.event_count()},
             f"initialised {url}: {len(kids)} authorities, keys in {ledger.settings.keys_dir}")


@credit.command()
@click.option("--subjects", default=200, show_default=True, type=click.IntRange(1),
              help="How many enterprises and people the city has.")
@click.option("--seed", default=2015, show_default=True, help="Random seed (same seed, same city).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def demo(subjects: int, seed: int, as_json: bool) -> None:
    """Write the deterministic demo city of Lin'an into an empty ledger."""
    config = settings()
    if config.passphrase is None:
        click.secho(
            "WARNING: CREDIT_KEY_PASSPHRASE is not set; the demo encrypts its keys with the "
            f"development passphrase {DEV_PASSPHRASE!r}. Never use it for real data.",
            fg="yellow", bold=True, err=True)
        config = replace(config, passphrase=DEV_PASSPHRASE)
    with opened(config) as ledger:
        existing = ledger.event_count()
        if existing:
            emit(as_json, {"written": False, "events": existing},
                 f"the ledger at {redacted(config.database_url)} already holds {existing} events; "
                 "the demo city is written into an empty ledger only: nothing written")
            return
        with progress_bar("demo city: records", None) as progress:
            summary = demo_city.build(ledger, subjects, seed, progress)
        emit(as_json, {"written": True, **vars(summary)},
             f"demo city written to {redacted(config.database_url)}: {summary.subjects} subjects, "
             f"{summary.records} records, {summary.corrections} corrections, "
             f"{summary.key_rotations} key rotations, {summary.events} signed events")


# -- verify, checkpoint -------------------------------------------------------------------------


def trusted_keys(config: Settings, trust: Path | None) -> list[bytes] | None:
    """The platform keys to trust: --trust, else the platform's public keys in the key folder."""
    if trust is not None:
        try:
            return [public_key_from_pem(trust.read_bytes())]
        except OSError as exc:
            fail(f"cannot read {trust}: {exc.strerror}")
        except ValueError as exc:
            fail(f"{trust}: {exc}")
    files = sorted(config.keys_dir.glob("platform-*.pub")) if config.keys_dir.is_dir() else []
    keys = []
    for path in files:
        try:
            keys.append(public_key_from_pem(path.read_bytes()))
        except (OSError, ValueError) as exc:
            fail(f"cannot read platform public key {path}: {exc}")
    return keys or None


@credit.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--trust", type=click.Path(path_type=Path, dir_okay=False),
              help="PEM public key of the platform to trust (default: the key folder's).")
def verify(as_json: bool, trust: Path | None) -> None:
    """Check every signature, the Merkle log, versions and checkpoints; exit 1 on any failure."""
    config = settings()
    trusted = trusted_keys(config, trust)
    # Not through CreditLedger: opening the application checks the key registry, and verify
    # must report a broken registry, not stop at it.
    engine = create_engine(prepare_database(config.database_url))
    try:
        if not inspect(engine).has_table(EVENTS_TABLE):
            fail(f"there is no ledger at {redacted(config.database_url)}: "
                 "run `credit init` or `credit demo` first")
        verifier = LedgerVerifier(engine, tables.events_table(EVENTS_TABLE),
                                  trusted_platform_keys=trusted)
        total = verifier.count_events() if sys.stderr.isatty() else None
        with progress_bar("verifying events", total) as progress:
            verifier.progress = progress
            report = verifier.run()
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    elif report.ok:
        tail = (f"; {report.uncheckpointed} events after the last checkpoint"
                if report.uncheckpointed else "; every event is under a checkpoint")
        click.echo(f"OK: {report.events} events and {report.checkpoints} checkpoints verified "
                   f"(trust: {report.trust}){tail}")
    else:
        click.echo(f"FAILED: {report.failure_count} problem(s) in {report.events} events and "
                   f"{report.checkpoints} checkpoints; first: {report.first_failure}", err=True)
        for failure in report.failures[1:20]:
            click.echo(f"  also: {failure}", err=True)
    sys.exit(0 if report.ok else 1)


@credit.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checkpoint as JSON.")
def checkpoint(as_json: bool) -> None:
    """Sign a checkpoint of the whole log now and print its note."""
    with opened() as ledger:
        cp = ledger.checkpoint()
    emit(as_json, {"tree_size": cp.tree_size, "root_hash": cp.root_hash.hex(),
                   "issued_at": cp.issued_at.isoformat(), "kid": cp.key_name, "note": cp.note},
         cp.note.rstrip("\n"))


# -- keys ---------------------------------------------------------------------------------------


@credit.group()
def keys() -> None:
    """List, generate, rotate and revoke the authorities' keys."""


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON.")
def keys_list(as_json: bool) -> None:
    """Every key in the ledger's key registry, with its validity."""
    with opened(replace(settings(), passphrase=None)) as ledger:
        registry = ledger.registry
    now = clock.now()
    rows: list[dict[str, Any]] = [
        {"kid": k.kid, "authority": k.authority, "fingerprint": fingerprint(k.public_key),
         "valid_from": k.valid_from.isoformat(),
         "expires_at": k.expires_at.isoformat() if k.expires_at else None,
         "retired_at": k.retired_at.isoformat() if k.retired_at else None,
         "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
         "status": k.status_at(now)}
        for k in registry.keys.values()
    ]
    text = "\n".join(f"{r['kid']:<24} {r['authority']:<14} {r['status']:<8} {r['fingerprint']} "
                     f"from {r['valid_from'][:10]}" for r in rows) or "no keys"
    emit(as_json, {"keys": rows}, text)


@keys.command("generate")
@click.argument("authority")
@click.option("--kind", type=click.Choice(["department", "credit_office"]), default="department",
              show_default=True)
@click.option("--name-zh", required=True, help="The authority's Chinese name.")
@click.option("--name-en", required=True, help="The authority's English name.")
@click.option("--expires", type=str, help="Expiry of the key (ISO date; China time).")
def keys_generate(authority: str, kind: str, name_zh: str, name_en: str,
                  expires: str | None) -> None:
    """Register a new AUTHORITY with a newly generated key pair."""
    with opened() as ledger:
        kid = ledger.register_authority(AuthorityProfile(authority, kind, name_zh, name_en),
                                        expires_at=parse_time(expires) if expires else None)
    click.echo(f"registered {authority} with key {kid}")


@keys.command("rotate")
@click.argument("authority")
@click.option("--expires", type=str, help="Expiry of the new key (ISO date; China time).")
def keys_rotate(authority: str, expires: str | None) -> None:
    """Give AUTHORITY a new key; its current key is retired from now."""
    with opened() as ledger:
        kid = ledger.rotate_key(authority, expires_at=parse_time(expires) if expires else None)
    click.echo(f"{authority} now signs with {kid}")


@keys.command("revoke")
@click.argument("kid")
@click.option("--reason", required=True, help="Why (for example: private key compromised).")
@click.option("--at", "at", type=str,
              help="Revoked from this time (ISO; default now); may lie in the past.")
def keys_revoke(kid: str, reason: str, at: str | None) -> None:
    """Revoke key KID: events it signs from then on fail verification."""
    with opened() as ledger:
        ledger.revoke_key(kid, reason=reason, revoked_at=parse_time(at) if at else None)
    click.echo(f"revoked {kid}")


# -- records --------------------------------------------------------------------------------------


@credit.group()
def record() -> None:
    """Submit and correct credit records."""


@record.command("submit")
@click.option("--as", "actor", required=True, help="The submitting department's code.")
@click.option("--subject", required=True, help="uscc:CODE, rid:NUMBER or a bare identifier.")
@click.option("--item", "item_code", required=True, help="Catalogue item code.")
@click.option("--decision-number", required=True)
@click.option("--decision-date", required=True, help="YYYY-MM-DD")
@click.option("--summary", required=True)
@click.option("--details", default="{}", help="JSON object of further fields.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def record_submit(actor: str, subject: str, item_code: str, decision_number: str,
                  decision_date: str, summary: str, details: str, as_json: bool) -> None:
    """Submit one credit record as a department."""
    try:
        decided = date.fromisoformat(decision_date)
    except ValueError:
        fail(f"--decision-date {decision_date!r} is not a date (YYYY-MM-DD)")
    extra = _json_object("--details", details)
    ref = parse_subject(subject, today=today_in_china())
    with opened() as ledger:
        record_id = ledger.submit_record(RecordSubmission(
            actor=actor, subject=ref, item_code=item_code, decision_number=decision_number,
            decision_date=decided, summary=summary, details=extra))
    emit(as_json, {"record_id": str(record_id), "subject": ref.masked()},
         f"recorded {record_id} about {ref.masked()}")


@record.command("correct")
@click.argument("record_id", type=click.UUID)
@click.option("--as", "actor", required=True, help="The department that owns the record.")
@click.option("--reason", required=True)
@click.option("--set", "changes", multiple=True, metavar="FIELD=VALUE",
              help="A corrected field (summary, decision_number, decision_date, details).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def record_correct(record_id: UUID, actor: str, reason: str, changes: tuple[str, ...],
                   as_json: bool) -> None:
    """Correct a record: a new signed event that names the version it supersedes."""
    parsed: dict[str, Any] = {}
    for change in changes:
        name, sep, value = change.partition("=")
        if not sep:
            fail(f"--set {change!r} is not FIELD=VALUE")
        if name == "decision_date":
            try:
                parsed[name] = date.fromisoformat(value)
            except ValueError:
                fail(f"--set decision_date={value!r} is not a date (YYYY-MM-DD)")
        elif name == "details":
            parsed[name] = _json_object("--set details", value)
        else:
            parsed[name] = value
    with opened() as ledger:
        ledger.correct_record(record_id, actor=actor, reason=reason, changes=parsed)
        version = ledger.get_record(record_id).version
    emit(as_json, {"record_id": str(record_id), "version": version},
         f"corrected {record_id} (now version {version})")


def _json_object(option: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        fail(f"{option} is not JSON: {exc}")
    if not isinstance(value, dict):
        fail(f"{option} must be a JSON object")
    return value


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    credit(prog_name="credit")
