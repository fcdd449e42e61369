"""Administration: init, demo, verify, checkpoint, keys, policies."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from sqlalchemy import create_engine, inspect

from cli.common import (
    as_option,
    credit,
    emit,
    fail,
    json_option,
    opened,
    parse_time,
    progress_bar,
    runner,
    services,
    settings,
    writing,
)
from domain import clock
from domain.authorities import CREDIT_OFFICE, LINAN_AUTHORITIES, AuthorityProfile
from keys.signer import fingerprint, public_key_from_pem, public_key_to_pem
from ledger import demo as demo_city
from ledger import tables
from ledger.application import EVENTS_TABLE
from ledger.policy_files import read_policy_file
from ledger.services import CreditServices
from ledger.settings import Settings
from ledger.storage import prepare_database, redacted
from ledger.verify import LedgerVerifier

DEV_PASSPHRASE = "credit-ledger-demo-only-NOT-FOR-PRODUCTION"


@credit.command()
@json_option
def init(as_json: bool) -> None:
    """Create the ledger: the platform key, every Lin'an authority with its key, and the policy
    versions kept in the repository."""
    with writing() as ledger:
        kids = [ledger.initialise(LINAN_AUTHORITIES[0])]
        kids += [ledger.register_authority(p) for p in LINAN_AUTHORITIES[1:]]
        policies = CreditServices(ledger).publish_bundled(CREDIT_OFFICE)
        url = redacted(ledger.settings.database_url)
        emit(as_json, {"database": url, "keys": kids, "policies": policies,
                       "events": ledger.event_count()},
             f"initialised {url}: {len(kids)} authorities, {len(policies)} policy versions, "
             f"keys in {ledger.settings.keys_dir}")


@credit.command()
@click.option("--subjects", default=200, show_default=True, type=click.IntRange(1),
              help="How many enterprises and people the city has (about 6 events each).")
@click.option("--seed", default=2015, show_default=True, help="Random seed (same seed, same city).")
@json_option
def demo(subjects: int, seed: int, as_json: bool) -> None:
    """Write the deterministic demo city of Lin'an (2016-2026) into an empty ledger."""
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
        with progress_bar("demo city: actions", None) as progress:
            summary = demo_city.build(ledger, subjects, seed, progress)
        if ledger.settings.projections == "embedded":
            # into an empty ledger: a rebuild is the fast way to read models (workers on a big city)
            run = runner(ledger)
            for name in ("keys", "checkpoints", "subjects"):
                with progress_bar(f"read models: {name}", None) as progress:
                    run.rebuild(name, progress=progress)
        emit(as_json, {"written": True, **vars(summary)},
             f"demo city written to {redacted(config.database_url)}: {summary.subjects} subjects, "
             f"{summary.records} records, {summary.corrections} corrections, "
             f"{summary.revocations} revocations, {summary.objections} objections, "
             f"{summary.repairs} repair applications, {summary.listings} listings, "
             f"{summary.commitments} commitments, {summary.policies} policy versions, "
             f"{summary.key_rotations} key rotations: {summary.events} signed events")


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
@json_option
def checkpoint(as_json: bool) -> None:
    """Sign a checkpoint of the whole log now and print its note."""
    with writing() as ledger:
        cp = ledger.checkpoint()
    emit(as_json, {"tree_size": cp.tree_size, "root_hash": cp.root_hash.hex(),
                   "issued_at": cp.issued_at.isoformat(), "kid": cp.key_name, "note": cp.note},
         cp.note.rstrip("\n"))


# -- keys ---------------------------------------------------------------------------------------


@credit.group()
def keys() -> None:
    """List, generate, rotate and revoke the authorities' keys."""


@keys.command("list")
@json_option
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
    with writing() as ledger:
        kid = ledger.register_authority(AuthorityProfile(authority, kind, name_zh, name_en),
                                        expires_at=parse_time(expires) if expires else None)
    click.echo(f"registered {authority} with key {kid}")


@keys.command("rotate")
@click.argument("authority")
@click.option("--expires", type=str, help="Expiry of the new key (ISO date; China time).")
def keys_rotate(authority: str, expires: str | None) -> None:
    """Give AUTHORITY a new key; its current key is retired from now."""
    with writing() as ledger:
        kid = ledger.rotate_key(authority, expires_at=parse_time(expires) if expires else None)
    click.echo(f"{authority} now signs with {kid}")


@keys.command("revoke")
@click.argument("kid")
@click.option("--reason", required=True, help="Why (for example: private key compromised).")
@click.option("--at", "at", type=str,
              help="Revoked from this time (ISO; default now); may lie in the past.")
def keys_revoke(kid: str, reason: str, at: str | None) -> None:
    """Revoke key KID: events it signs from then on fail verification."""
    with writing() as ledger:
        ledger.revoke_key(kid, reason=reason, revoked_at=parse_time(at) if at else None)
    click.echo(f"revoked {kid}")


@keys.command("export")
@click.argument("authority")
def keys_export(authority: str) -> None:
    """Print AUTHORITY's current public key as PEM (``platform`` for the platform's), to hand to
    courts and others who verify extracts and checkpoints."""
    with opened(replace(settings(), passphrase=None)) as ledger:
        key = ledger.registry.key_for_signing(authority, clock.now())
    click.echo(public_key_to_pem(key.public_key).decode("ascii"), nl=False)


# -- policies -------------------------------------------------------------------------------------


@credit.group()
def policy() -> None:
    """Publish and list policy versions (catalogue, grading, list measures, calendar)."""


@policy.command("publish")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@as_option
@json_option
def policy_publish(file: Path, actor: str, as_json: bool) -> None:
    """Publish the policy version in FILE (JSON; see domain/policies/ for the format)."""
    document = read_policy_file(file)
    with services() as svc:
        version = svc.publish_policy(actor, document)
    emit(as_json, {"kind": version.kind, "version": version.policy_version,
                   "effective_from": version.effective_from.isoformat()},
         f"published {version.kind} {version.policy_version}, in force from "
         f"{version.effective_from.isoformat()}")


@policy.command("list")
@json_option
def policy_list(as_json: bool) -> None:
    """The published policy versions, by kind, with their dates."""
    with opened(replace(settings(), passphrase=None)) as ledger:
        rows = [{"kind": kind, "version": p.version, "effective_from": p.effective_from.isoformat(),
                 "source": p.source}
                for kind, versions in ledger.policies.versions.items() for p in versions]
    emit(as_json, {"policies": rows},
         "\n".join(f"{r['kind']:<10} {r['version']:<8} from {r['effective_from']}  {r['source']}"
                   for r in rows) or "no policies published")
