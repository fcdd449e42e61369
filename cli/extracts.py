"""Extracts and what courts need to check them: extract, verify-extract, checkpoints, verifier."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import zipapp
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select

from cli.common import credit, fail, opened, parse_time, settings, subject_ref, writing
from domain.identifiers import mask_subject_key
from ledger import merkle, tables
from ledger.checkpoint import parse_checkpoint
from ledger.extract import ExtractIssuer
from ledger.verify import stored_nodes
from ledger.verify_extract import CONTEXT_STREAMS, load_trusted_key, run


def _as_of(text: str | None) -> datetime | None:
    """A date means the end of that day in China time; a time is taken as given."""
    if text is None:
        return None
    moment = parse_time(text)
    if len(text) == 10:
        moment = moment + timedelta(days=1) - timedelta(microseconds=1)
    return moment


@credit.command()
@click.argument("subject_text", metavar="SUBJECT")
@click.option("--as-of", "as_of", help="Date (end of that day, China time) or date-time; "
              "default now.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Where to write the extract (JSON).")
def extract(subject_text: str, as_of: str | None, output: Path) -> None:
    """Issue a signed extract of a subject's credit history that a court verifies offline."""
    ref = subject_ref(subject_text)
    with writing() as ledger:
        issued = ExtractIssuer(ledger).issue(ref.key, _as_of(as_of))
    output.write_text(issued.to_json(), encoding="utf-8")
    payload = issued.payload
    subject_events = sum(1 for e in payload["events"]
                         if e["topic"].rsplit(":", 1)[-1].split(".")[0] not in CONTEXT_STREAMS)
    checkpoint = parse_checkpoint(payload["checkpoint"])
    click.echo(f"extract {issued.number} of {mask_subject_key(ref.key)} as of "
               f"{payload['as_of']}: {subject_events} signed events about it, grade "
               f"{payload['state']['grade']['grade']}, under checkpoint of "
               f"{checkpoint.tree_size} events; written to {output}")


@credit.command("verify-extract")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--trust", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The platform's public key (PEM), as `credit keys export platform` prints it.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_extract(file: Path, trust: Path, as_json: bool) -> None:
    """Check an extract offline (the same code as `python -m ledger.verify_extract`)."""
    try:
        key = load_trusted_key(trust)
    except SystemExit as exc:
        fail(str(exc))
    valid, data, text = run(file, key)
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else text)
    sys.exit(0 if valid else 1)


@credit.command()
@click.option("--since", type=click.IntRange(1), help="From checkpoint number N (default: the "
              "latest ten).")
@click.option("--json", "as_json", is_flag=True)
def checkpoints(since: int | None, as_json: bool) -> None:
    """Signed checkpoints, each with a consistency proof from the one before it: whoever kept
    an old checkpoint can confirm the log only grew since."""
    c = tables.checkpoints
    with opened(replace(settings(), passphrase=None)) as ledger, ledger.engine.connect() as conn:
        last = conn.execute(select(func.max(c.c.seq))).scalar() or 0
        first = since if since is not None else max(last - 9, 1)
        if since is not None and since > last:
            fail(f"there is no checkpoint {since}; the latest is {last}")
        rows = conn.execute(select(c.c.seq, c.c.note).where(c.c.seq >= first)
                            .order_by(c.c.seq)).all()
        nodes = stored_nodes(conn)
        listed: list[dict[str, Any]] = []
        previous: tuple[int, int] | None = None
        for seq, note in rows:
            size = parse_checkpoint(note).tree_size
            item: dict[str, Any] = {"seq": seq, "tree_size": size, "note": note}
            if previous is not None:
                proof = (merkle.consistency_proof(previous[1], size, nodes)
                         if 0 < previous[1] < size else [])
                item["consistency"] = {"from_seq": previous[0], "from_size": previous[1],
                                       "proof": [p.hex() for p in proof]}
            listed.append(item)
            previous = (seq, size)
    if as_json:
        click.echo(json.dumps({"checkpoints": listed}, indent=2))
        return
    for item in listed:
        click.echo(f"# checkpoint {item['seq']}")
        click.echo(item["note"].rstrip("\n"))
        consistency = item.get("consistency")
        if consistency is not None:
            click.echo(f"# consistent with checkpoint {consistency['from_seq']} (size "
                       f"{consistency['from_size']}): {len(consistency['proof'])} hashes")
            for value in consistency["proof"]:
                click.echo(f"#   {value}")
        click.echo()


# The modules the offline verifier needs: standard library and `cryptography` only (a test runs
# the packed file with every other import blocked).
VERIFIER_MODULES = (
    "domain/__init__.py", "domain/state.py", "domain/grading.py", "domain/policies.py",
    "domain/periods.py", "keys/__init__.py", "keys/registry.py", "keys/signer.py",
    "ledger/__init__.py", "ledger/chains.py", "ledger/checkpoint.py", "ledger/envelope.py",
    "ledger/event_facts.py", "ledger/jws.py", "ledger/merkle.py", "ledger/registry_events.py",
    "ledger/registry_replay.py", "ledger/verify_checks.py", "ledger/verify_extract.py",
)


def pack_verifier(output: Path) -> None:
    """One file a court copies and runs: ``python3 credit-verify.pyz FILE --trust KEY.pem``."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as folder:
        for name in VERIFIER_MODULES:
            target = Path(folder) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / name, target)
        zipapp.create_archive(folder, output, interpreter="/usr/bin/env python3",
                              main="ledger.verify_extract:command", compressed=True)


@credit.command()
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("credit-verify.pyz"), show_default=True)
def verifier(output: Path) -> None:
    """Write the offline extract verifier as one file (needs Python 3.11+ and `cryptography`)."""
    pack_verifier(output)
    click.echo(f"wrote {output}: run `python3 {output} EXTRACT.json --trust platform.pem`")
