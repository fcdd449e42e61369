"""Administration: init, demo, verify, checkpoint, keys, policies."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click

from cli.common import (
    TIME_HELP,
    as_option,
    credit,
    emit,
    json_option,
    opened,
    parse_time,
    print_table,
    progress_bar,
    reading,
    runner,
    safe_text,
    services,
    settings,
    writing,
)
from domain.authorities import AuthorityProfile
from workflows import administration, demo_city, demo_witnesses
from workflows.policy_files import read_policy_file
from workflows.session import DEVELOPMENT_SECRET, redacted


@credit.command()
@json_option
def init(as_json: bool) -> None:
    """Create the ledger: the platform key, every Lin'an authority with its key, and the policy
    versions kept in the repository."""
    with writing(replace(settings(), create=True)) as ledger:
        kids, policies = administration.initialise_city(ledger)
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
    config = replace(settings(), create=True)
    if not config.holds_secrets:
        click.secho(
            "WARNING: no authority's secret is set; the demo encrypts each authority's key with "
            f"the development secret '{DEVELOPMENT_SECRET}-<authority>'; later commands that sign "
            "need CREDIT_DEVELOPMENT_SECRETS=1. Never use them for real data.",
            fg="yellow", bold=True, err=True)
        config = replace(config, development_secrets=True)
    with opened(config) as ledger:
        existing = ledger.event_count()
        if existing:
            same = demo_city.holds_city(ledger, subjects, seed)
            emit(as_json, {"written": False, "events": existing, "same_city": same},
                 f"the ledger at {redacted(config.database_url)} already holds "
                 + (f"this demo city ({subjects} subjects, seed {seed}): nothing written" if same
                    else f"{existing} events of something else; the demo city is written into an "
                         "empty ledger only: nothing written"))
            if not same:
                sys.exit(1)
            return
        with progress_bar("demo city: actions", None) as progress:
            summary = demo_city.build(ledger, subjects, seed, progress)
        if ledger.settings.projections == "embedded":
            # into an empty ledger: a rebuild is the fast way to read models (workers on a big city)
            run = runner(ledger)
            for name in ("keys", "checkpoints", "subjects"):
                with progress_bar(f"read models: {name}", None) as progress:
                    run.rebuild(name, progress=progress)
        folder = ledger.settings.keys_dir.parent / "witnesses"
        cosigned, cosigners = demo_witnesses.cosign_demo(ledger, folder)
        for result in cosigned:
            click.echo(safe_text(f"{result.name}: {result.outcome}"), err=True)
        click.echo("verify an extract with the demo's witnesses: credit verify-extract FILE "
                   "--trust PLATFORM.pem " + " ".join(
                       f"--witness {c.name} {c.public_key_file}" for c in cosigners), err=True)
        emit(as_json, {"written": True, **vars(summary),
                       "cosigned_by": [r.name for r in cosigned if r.cosignature]},
             f"demo city written to {redacted(config.database_url)}: {summary.subjects} subjects, "
             f"{summary.records} records, {summary.corrections} corrections, "
             f"{summary.revocations} revocations, {summary.objections} objections, "
             f"{summary.repairs} repair applications, {summary.listings} listings, "
             f"{summary.commitments} commitments, {summary.policies} policy versions, "
             f"{summary.key_rotations} key rotations: {summary.events} signed events")


@credit.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--trust", type=click.Path(path_type=Path, dir_okay=False),
              help="PEM public key of the platform to trust (default: the one `credit init` "
                   "pinned in the key folder).")
@click.option("--trust-ledger-itself", is_flag=True,
              help="UNSAFE: with no key to trust, check the ledger against its own first key "
                   "(proves nothing against whoever rewrote it).")
@click.option("--projections", "audit", is_flag=True,
              help="Also recompute the read models' rows from the log and name every row that "
                   "differs (`credit rebuild` repairs them).")
@click.option("--sample", type=click.IntRange(1), help="With --projections: check N subjects "
                                                       "chosen at random, not all.")
def verify(as_json: bool, trust: Path | None, trust_ledger_itself: bool, audit: bool,
           sample: int | None) -> None:
    """Check every signature, the Merkle log, versions and checkpoints; exit 1 on any failure."""
    config = settings()
    verification = administration.StoreVerification(config, None)  # the store first
    trusted = administration.trusted_platform_keys(config, trust, trust_ledger_itself)
    verification.verifier.trusted = trusted
    total = verification.count_events() if sys.stderr.isatty() else None
    with progress_bar("verifying events", total) as progress:
        report = verification.run(progress)
    unsafe = trusted is None
    checked, problems = 0, list[str]()
    if audit:
        with opened(reading()) as ledger:
            run = runner(ledger)
            checked, problems = run.audit(sample)
            problems += [f"the {f['projection']} read model could not store {f['subject']} at "
                         f"position {f['position']}: {f['reason']}" for f in run.faults()]
    if as_json:
        extra = ({"projections": {"subjects_checked": checked, "differences": problems}}
                 if audit else {})
        click.echo(json.dumps({**report.as_json(), "unsafe_self_trust": unsafe, **extra},
                              ensure_ascii=False, indent=2))
    elif report.ok:
        tail = (f"; {report.uncheckpointed} events after the last checkpoint"
                if report.uncheckpointed else "; every event is under a checkpoint")
        ok = ("OK (UNSAFE: trusting the ledger's own first key, no pinned one)" if unsafe
              else "OK")
        click.echo(f"{ok}: {report.events} events and {report.checkpoints} checkpoints verified "
                   f"(trust: {report.trust}){tail}")
    else:
        click.echo(f"FAILED: {report.failure_count} problem(s) in {report.events} events and "
                   f"{report.checkpoints} checkpoints; first: {report.first_failure}", err=True)
        for failure in report.failures[1:20]:
            click.echo(f"  also: {failure}", err=True)
    if audit and not as_json:
        if problems:
            click.echo(f"FAILED: read models: {len(problems)} row(s) differ from the log "
                       "(`credit rebuild` repairs them):", err=True)
            for problem in problems[:50]:
                click.echo(f"  {problem}", err=True)
        else:
            click.echo(f"OK: read models: {checked} subjects' rows recomputed from the log, "
                       "all equal")
    sys.exit(0 if report.ok and not problems else 1)


@credit.command()
@json_option
def checkpoint(as_json: bool) -> None:
    """Sign a checkpoint of the whole log now and print its note."""
    with writing() as ledger:
        cp = administration.sign_checkpoint(ledger)
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
    with opened(reading()) as ledger:
        rows = administration.key_rows(ledger)
    if as_json or not rows:
        emit(as_json, {"keys": rows}, "no keys")
        return
    print_table(["key", "authority", "status", "fingerprint", "from"],
                [[r["kid"], r["authority"], r["status"], r["fingerprint"], r["valid_from"][:10]]
                 for r in rows])


@keys.command("generate")
@click.argument("authority")
@click.option("--kind", type=click.Choice(["department", "credit_office"]), default="department",
              show_default=True)
@click.option("--name-zh", required=True, help="The authority's Chinese name.")
@click.option("--name-en", required=True, help="The authority's English name.")
@click.option("--expires", type=str, help=f"Expiry of the key: {TIME_HELP}.")
def keys_generate(authority: str, kind: str, name_zh: str, name_en: str,
                  expires: str | None) -> None:
    """Register a new AUTHORITY with a newly generated key pair."""
    with writing() as ledger:
        kid = administration.register_authority(
            ledger, AuthorityProfile(authority, kind, name_zh, name_en),
            expires_at=parse_time(expires) if expires else None)
    click.echo(f"registered {authority} with key {kid}")


@keys.command("rotate")
@click.argument("authority")
@click.option("--expires", type=str, help=f"Expiry of the new key: {TIME_HELP}.")
def keys_rotate(authority: str, expires: str | None) -> None:
    """Give AUTHORITY a new key; its current key is retired from now."""
    with writing() as ledger:
        kid = administration.rotate_key(ledger, authority,
                                        expires_at=parse_time(expires) if expires else None)
    click.echo(f"{authority} now signs with {kid}")


@keys.command("revoke")
@click.argument("kid")
@click.option("--reason", required=True, help="Why (for example: private key compromised).")
@click.option("--at", "at", type=str,
              help=f"Revoked from this time, {TIME_HELP} (default now); may lie in the past.")
def keys_revoke(kid: str, reason: str, at: str | None) -> None:
    """Revoke key KID: events it signs from then on fail verification."""
    with writing() as ledger:
        administration.revoke_key(ledger, kid, reason, revoked_at=parse_time(at) if at else None)
    click.echo(f"revoked {kid}")


@keys.command("export")
@click.argument("authority")
def keys_export(authority: str) -> None:
    """Print AUTHORITY's current public key as PEM (``platform`` for the platform's), to hand to
    courts and others who verify extracts and checkpoints."""
    with opened(reading()) as ledger:
        pem = administration.public_key_pem(ledger, authority)
    click.echo(pem, nl=False)


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
    with opened(reading()) as ledger:
        rows = administration.policy_rows(ledger)
    if as_json or not rows:
        emit(as_json, {"policies": rows}, "no policies published")
        return
    print_table(["kind", "version", "in force from", "source"],
                [[r["kind"], r["version"], r["effective_from"], r["source"]] for r in rows])
