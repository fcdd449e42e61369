"""Extracts and what courts need to check them: extract, verify-extract, checkpoints, verifier."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cli.common import (
    TIME_HELP,
    credit,
    fail,
    opened,
    parse_time,
    purpose_option,
    reading,
    subject_ref,
    writing,
)
from domain.identifiers import mask_subject_key
from workflows.administration import trusted_platform_keys
from workflows.extracts import checkpoint_listing, verify_extract_file
from workflows.reads import Reads
from workflows.services import CreditServices
from workflows.verifier_file import pack_verifier, verifier_files


@credit.command()
@click.argument("subject_text", metavar="SUBJECT")
@click.option("--as-of", "as_of", help=f"As of {TIME_HELP}; default now.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Where to write the extract (JSON).")
@click.option("--as", "reader_text", default="public", show_default=True,
              metavar="READER", help="Who it is issued to: the credit office, a court or an "
                                     "auditor (court:NAME), or subject:KEY for its own.")
@purpose_option
def extract(subject_text: str, as_of: str | None, output: Path, reader_text: str,
            purpose: str | None) -> None:
    """Issue a signed extract of a subject's whole credit history, which a court verifies
    offline. It holds every signed event about the subject: the issue is logged."""
    ref = subject_ref(subject_text)
    with writing() as ledger:
        reads = Reads(CreditServices(ledger))
        issued = reads.extract(reads.reader(reader_text), ref.key,
                               parse_time(as_of) if as_of else None, purpose)
    output.write_text(issued.to_json(), encoding="utf-8")
    payload = issued.payload
    state = payload["state"]
    found = ("no event about it (absence proved by the chain map)" if state.get("absent") else
             f"{issued.subject_event_count} signed events about it, grade "
             f"{state['grade']['grade']}")
    click.echo(f"extract {issued.number} of {mask_subject_key(ref.key)} as of "
               f"{payload['as_of']}: {found}, under checkpoint of {issued.checkpoint_size} "
               f"events; written to {output}")


@credit.command("verify-extract")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--trust", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The platform's public key (PEM), as `credit keys export platform` prints it.")
@click.option("--witness", "witnesses", type=(str, click.Path(path_type=Path, dir_okay=False)),
              multiple=True, metavar="NAME KEY.pem",
              help="A witness whose cosignature of the extract's checkpoint counts (repeat).")
@click.option("--quorum", type=click.IntRange(0), help="How many of the witnesses must have "
              "cosigned (default: all of them).")
@click.option("--tsa-cert", type=click.Path(path_type=Path, dir_okay=False),
              help="The timestamping authority's certificate: the checkpoint's RFC 3161 "
                   "timestamp must be its.")
@click.option("--tsa-root", "tsa_roots", type=click.Path(path_type=Path, dir_okay=False),
              multiple=True, help="A root certificate the TSA's chains to (repeat).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_extract(file: Path, trust: Path, witnesses: tuple[tuple[str, Path], ...],
                   quorum: int | None, tsa_cert: Path | None, tsa_roots: tuple[Path, ...],
                   as_json: bool) -> None:
    """Check an extract offline (the same code as `python -m proofs.verify_extract`)."""
    valid, data, text = verify_extract_file(file, trust, witnesses, quorum, tsa_cert, tsa_roots)
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else text)
    sys.exit(0 if valid else 1)


@credit.command()
@click.option("--since", type=click.IntRange(1), help="From checkpoint number N (default: the "
              "latest ten).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--trust", type=click.Path(path_type=Path, dir_okay=False),
              help="PEM public key of the platform to trust (default: the one `credit init` "
                   "pinned in the key folder).")
@click.option("--trust-ledger-itself", is_flag=True,
              help="UNSAFE: list them unchecked when no platform key is pinned.")
def checkpoints(since: int | None, as_json: bool, trust: Path | None,
                trust_ledger_itself: bool) -> None:
    """Signed checkpoints, each with a consistency proof from the one before it: whoever kept
    an old checkpoint can confirm the log only grew since. Listed only once each note checks
    against the pinned platform key."""
    config = reading()
    with opened(config) as ledger:  # the ledger first: where there is none, say that
        trusted = trusted_platform_keys(config, trust, trust_ledger_itself)
        if trusted is None:
            click.echo("# UNSAFE: not checked against a pinned platform key", err=True)
        listed = checkpoint_listing(ledger, since, trusted)
    if as_json:
        click.echo(json.dumps({"checkpoints": listed}, indent=2))
        return
    for item in listed:
        click.echo(f"# checkpoint {item['seq']}")
        click.echo(item["note"].rstrip("\n"))
        for line in item.get("cosignatures", []):  # the witnesses' lines: a cosigned note
            click.echo(line.rstrip("\n"))
        consistency = item.get("consistency")
        if consistency is not None:
            click.echo(f"# consistent with checkpoint {consistency['from_seq']} (size "
                       f"{consistency['from_size']}): {len(consistency['proof'])} hashes")
            for value in consistency["proof"]:
                click.echo(f"#   {value}")
        click.echo()


@credit.command()
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("credit-verify.pyz"), show_default=True)
@click.option("--list", "list_only", is_flag=True,
              help="Only print the files it would pack (proofs/ and what its imports reach).")
def verifier(output: Path, list_only: bool) -> None:
    """Write the offline extract verifier as one file (needs Python 3.11+ and `cryptography`)."""
    if list_only:
        for path in verifier_files():
            click.echo(str(path))
        return
    try:
        digest = pack_verifier(output)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    click.echo(f"wrote {output} (SHA-256 {digest}): run `python3 {output} EXTRACT.json "
               "--trust platform.pem`")
