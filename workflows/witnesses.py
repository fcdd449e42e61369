"""The platform's side of witnessing (C2SP tlog-witness): send the latest checkpoint to each
configured witness with the consistency proof from the last checkpoint it cosigned, check the
cosignature it returns against that witness's key, and keep it (``ledger_cosignatures``).

The witnesses are configured in a JSON file (default ``witnesses.json`` in the keys folder):
``[{"name": "court.hangzhou/witness", "url": "http://…", "key": "court-witness.pem"}]`` (a
relative key path is read beside the file). For a demonstration a witness may instead run inside
the platform's process: ``{"name", "in_process": {"key": PRIVATE.pem, "state": FILE}}`` (with
``"mirror": DB`` it is a monitor reading the log's tiles directly) — the same protocol, but no
independence: a real witness is another party's process."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, inspect, select

from keys.registry import PLATFORM
from keys.signer import public_key_from_pem
from ledger import tables
from ledger.application import CreditLedger
from ledger.errors import LedgerError
from ledger.tables import stored_nodes
from proofs import merkle
from proofs.checkpoint import parse_checkpoint
from proofs.cosignature import CosignatureInvalid, split_note, verify_cosignature
from workflows.mirror import Mirror
from workflows.monitor import Monitor
from workflows.tiles import LogTiles
from workflows.witness import Witness, read_key_file

Post = Callable[[str, bytes], tuple[int, str]]  # url, body -> status, text
CONFIG_NAME = "witnesses.json"


@dataclass(frozen=True)
class InProcess:
    """A witness (or, with ``mirror``, a monitor) run inside the platform's process."""

    key: Path
    state: Path
    mirror: Path | None = None


@dataclass(frozen=True)
class WitnessConfig:
    name: str
    url: str
    public_key: bytes
    in_process: InProcess | None = None


@dataclass
class Published:
    name: str
    outcome: str
    tree_size: int
    cosignature: str | None = None


def read_config(path: Path) -> list[WitnessConfig]:
    """The witnesses in ``path`` (none if it does not exist); LedgerError naming what is wrong."""
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text("utf-8"))
        found = []
        for e in entries:
            if "in_process" in e:
                local = e["in_process"]
                inside = InProcess(path.parent / local["key"], path.parent / local["state"],
                                   path.parent / local["mirror"] if local.get("mirror") else None)
                key = read_key_file(inside.key)
                found.append(WitnessConfig(str(e["name"]), f"in-process:{e['name']}",
                                           key.public_key().public_bytes_raw(), inside))
            else:
                found.append(WitnessConfig(str(e["name"]), str(e["url"]).rstrip("/"),
                                           public_key_from_pem((path.parent / str(e["key"]))
                                                               .read_bytes())))
        return found
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LedgerError(f"{path}: not a list of witnesses {{name, url, key}}: {exc}") from None


def http_post(url: str, body: bytes, timeout: float = 10.0) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "text/plain; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return int(answer.status), answer.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(getattr(exc, "reason", exc))


def request_body(old_size: int, proof: list[bytes], note: str) -> bytes:
    """An add-checkpoint request: ``old <size>``, the proof's hashes, a blank line, the note."""
    lines = [f"old {old_size}\n", *(base64.b64encode(h).decode("ascii") + "\n" for h in proof),
             "\n"]
    return ("".join(lines) + note).encode("utf-8")


def config_file(ledger: CreditLedger) -> Path:
    return ledger.settings.keys_dir / CONFIG_NAME


def publish(ledger: CreditLedger, witnesses: list[WitnessConfig], post: Post = http_post,
            note: str | None = None) -> list[Published]:
    """Ask every witness to cosign the checkpoint ``note`` (default: the latest); keep what
    verifies."""
    engine = ledger.engine
    tables.cosignatures.create(engine, checkfirst=True)
    c, w = tables.checkpoints, tables.cosignatures
    with engine.connect() as conn:
        query = select(c.c.seq, c.c.note)
        query = (query.where(c.c.note == note) if note is not None
                 else query.order_by(c.c.seq.desc()).limit(1))
        latest = conn.execute(query).first()
    if latest is None:
        raise LedgerError("the ledger has no such checkpoint to publish")
    seq, note = int(latest[0]), str(latest[1])
    checkpoint = parse_checkpoint(note)
    body, _ = split_note(note)
    results = []
    def ask(witness: WitnessConfig) -> Published:
        with engine.connect() as conn:
            old = int(conn.execute(select(func.max(w.c.tree_size))
                                   .where(w.c.witness == witness.name)).scalar() or 0)
        return _ask(ledger, witness, seq, checkpoint.tree_size, note, body, old, post)

    remote = [x for x in witnesses if x.in_process is None]
    with ThreadPoolExecutor(max_workers=max(1, len(remote))) as pool:  # all asked at once
        asked = {x.name: pool.submit(ask, x) for x in remote}
        local = {x.name: ask(x) for x in witnesses if x.in_process is not None}
        results = [local[x.name] if x.name in local else asked[x.name].result()
                   for x in witnesses]
    return results


def _ask(ledger: CreditLedger, witness: WitnessConfig, seq: int, size: int, note: str,
         body: str, old: int, post: Post) -> Published:
    engine = ledger.engine
    for _ in range(2):  # once more with the size the witness says it holds (409)
        if old > size:
            return Published(witness.name, f"refused: it holds size {old}, above ours {size} "
                                           "(a rollback of the log?)", size)
        with engine.connect() as conn:
            proof = (merkle.consistency_proof(old, size, stored_nodes(conn))
                     if 0 < old < size else [])
        if witness.in_process is not None:
            local = _local(witness, ledger)
            try:
                answer = local.add_checkpoint(request_body(old, proof, note))
            finally:
                if isinstance(local, Monitor):
                    local.mirror.close()
            status, text = answer.status, answer.body
        else:
            status, text = post(f"{witness.url}/add-checkpoint", request_body(old, proof, note))
        if status == 409 and text.strip().isdigit():
            old = int(text.strip())
            continue
        if status != 200:
            return Published(witness.name, f"refused ({status or 'unreachable'}): "
                                           f"{text.strip()[:200]}", size)
        for line in text.splitlines():
            try:
                cosigned = verify_cosignature(line, witness.name, witness.public_key, body)
            except CosignatureInvalid:
                continue
            with engine.begin() as conn:
                conn.execute(tables.cosignatures.delete().where(
                    (tables.cosignatures.c.seq == seq)
                    & (tables.cosignatures.c.witness == witness.name)))
                conn.execute(insert(tables.cosignatures).values(
                    seq=seq, witness=witness.name, tree_size=size,
                    timestamp=cosigned.timestamp, line=cosigned.line))
            return Published(witness.name, f"cosigned checkpoint {seq} (size {size})", size,
                             cosigned.line)
        return Published(witness.name, "answered without a cosignature that verifies with its "
                                       "key", size)
    return Published(witness.name, f"refused: it keeps answering 409 (size {old})", size)


def published_note(ledger: CreditLedger) -> str:
    """The latest checkpoint's note (what ``publish`` sends by default)."""
    latest = LogTiles(ledger).checkpoint()
    if latest is None:
        raise LedgerError("the ledger has no checkpoint")
    return latest[1]


def cosignatures_of(ledger: CreditLedger, note: str) -> list[str]:
    """The witnesses' lines kept for the checkpoint ``note``."""
    c, w = tables.checkpoints, tables.cosignatures
    with ledger.engine.connect() as conn:
        if not inspect(conn).has_table(w.name):
            return []
        return [str(line) for (line,) in conn.execute(
            select(w.c.line).join(c, c.c.seq == w.c.seq).where(c.c.note == note)
            .order_by(w.c.witness))]


def _local(witness: WitnessConfig, ledger: CreditLedger) -> Witness | Monitor:
    """The in-process witness or monitor of ``witness`` (its key and state read each time)."""
    inside = witness.in_process
    assert inside is not None
    platform = ledger.registry.authorities[PLATFORM]
    keys = [ledger.registry.keys[kid].public_key for kid in platform.kids]
    cosigner = Witness(witness.name, read_key_file(inside.key), ledger.settings.origin, keys,
                       inside.state)
    if inside.mirror is None:
        return cosigner
    return Monitor(cosigner, Mirror(f"sqlite:///{inside.mirror}", keys[0]),
                   LogTiles(ledger).resource)
