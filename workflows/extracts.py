"""Signed record extracts: one file a court checks with the platform's public key and nothing else.

An extract (docs/FORMAT.md §8) is a JWS signed by the platform whose payload holds, as of a time T:
every event of the subject, of the key registry and of the policies, **as stored**; a checkpoint
issued at or after T that covers all of them; an inclusion proof of each event under that
checkpoint; the map proof of each of the three chains (so that no event can be left out); and the
subject's state recomputed from those events. ``proofs.verify_extract`` checks all of it offline.

Everything is read in one transaction that holds the write lock, so the checkpoint, the chain map
and the events are one consistent snapshot.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, inspect, select, type_coerce
from sqlalchemy.types import NullType

from domain import clock
from domain.authorities import PLATFORM
from domain.clock import CHINA_TIME
from domain.state import absence, stream_of, subject_state
from keys.registry import KeyRegistryError
from keys.signer import b64
from ledger import tables
from ledger.application import CreditLedger
from ledger.errors import LedgerError
from ledger.recorder import LedgerCorrupted
from ledger.tables import stored_nodes
from proofs import chain_map, jws, merkle
from proofs.checkpoint import Checkpoint, parse_checkpoint
from proofs.checks import check_extends, oid_text, registry_key, verify_checkpoint
from proofs.envelope import format_instant
from proofs.facts import fact_from_row
from proofs.failures import VerificationFailure
from proofs.verify_extract import (
    CONTEXT_STREAMS,
    TrustedTsa,
    TrustedWitness,
    load_certificate,
    load_trusted_key,
    run,
)
from workflows import timestamps, witnesses

EXTRACT_TYPE = "credit-ledger/extract/v1"
MEDIA_TYPE = "credit-extract+json"
CONTEXT_CHAINS = (chain_map.REGISTRY_CHAIN, chain_map.POLICY_CHAIN)
IN_CHUNK = 400


@dataclass(frozen=True)
class Extract:
    """An issued extract: the JWS document and what it says."""

    document: dict[str, str]
    payload: dict[str, Any]

    @property
    def number(self) -> str:
        return str(self.payload["number"])

    @property
    def subject_event_count(self) -> int:
        """Events about the subject itself (not the key registry's or the policies')."""
        return sum(1 for e in self.payload["events"]
                   if stream_of(e["topic"]) not in CONTEXT_STREAMS)

    @property
    def checkpoint_size(self) -> int:
        return parse_checkpoint(self.payload["checkpoint"]).tree_size

    def to_json(self) -> str:
        return json.dumps(self.document, indent=2) + "\n"


def signed_payload(data: bytes) -> dict[str, Any]:
    """What a signed file this platform issued says (its JWS payload), unchecked: for showing
    a file the platform itself wrote; anything received is checked by the verifier."""
    payload: dict[str, Any] = json.loads(jws.parse(json.loads(data)).payload)
    return payload


def extract_number(subject: str, as_of: str, checkpoint: Checkpoint, issued_at: datetime) -> str:
    """A number that names the extract: the day, the checkpoint's size and a digest."""
    digest = hashlib.sha256(
        f"{subject}\n{as_of}\n{checkpoint.note}\n{format_instant(issued_at)}".encode()
    ).hexdigest()[:8].upper()
    return f"LA-{issued_at.astimezone(CHINA_TIME):%Y%m%d}-{checkpoint.tree_size}-{digest}"


def _raw(column: Any) -> Any:
    return type_coerce(column, NullType()).label(column.name)


class ExtractIssuer:
    """Builds and signs extracts from one ledger."""

    def __init__(self, ledger: CreditLedger) -> None:
        self.ledger = ledger

    def issue(self, subject: str, as_of: datetime | None = None) -> Extract:
        """The extract of ``subject`` as of ``as_of`` (default: now)."""
        ledger = self.ledger
        ledger.refresh()
        moment = clock.now() if as_of is None else as_of
        if moment.tzinfo is None:
            raise LedgerError("the as-of time needs a timezone")
        if moment > clock.now():
            raise LedgerError(f"as-of {format_instant(moment)} lies in the future")
        with ledger.recorder.locked() as tx:
            checkpoint = self.anchor(tx, moment)
            rows = {key: self.chain_rows(tx, key, checkpoint.tree_size)
                    for key in (subject, *CONTEXT_CHAINS)}
            proofs = {key: ledger.recorder.chain_map_store.proof(tx, key) for key in rows}
            positions = sorted(row[0] for chain in rows.values() for row in chain)
            inclusion = merkle.inclusion_proofs(positions, checkpoint.tree_size,
                                                lambda wanted: log_nodes(tx, wanted))
        issued = clock.now()  # after the checkpoint the extract rests on
        for key, chain in rows.items():
            length, head = chain_map.chain_head(bytes(row[-1]) for row in chain)
            try:
                proofs[key].check(length, head, checkpoint.chain_root)
            except chain_map.MapProofError as exc:
                raise LedgerCorrupted(f"the chain index disagrees with the log: {exc}") from None
        every = sorted((row for chain in rows.values() for row in chain), key=lambda r: r[0])
        facts = [fact_from_row(*row[:6]) for row in rows[subject]]
        policy_facts = [fact_from_row(*row[:6]) for row in rows[chain_map.POLICY_CHAIN]]
        registry = rows[chain_map.REGISTRY_CHAIN]
        first = fact_from_row(*registry[0][:6]).recorded_at if registry else None
        if first is None or moment < first:
            raise LedgerError(f"as of {format_instant(moment)} the ledger held nothing: its first "
                              f"event was recorded at {format_instant(first) if first else 'no time'}")
        state = (subject_state(subject, facts, policy_facts,
                               moment.astimezone(CHINA_TIME).date(), known_at=moment)
                 if facts else absence(subject, moment, checkpoint.tree_size))
        as_of_text = format_instant(moment)
        payload = {
            "type": EXTRACT_TYPE,
            "number": extract_number(subject, as_of_text, checkpoint, issued),
            "subject": subject,
            "as_of": as_of_text,
            "issued_at": format_instant(issued),
            "checkpoint": checkpoint.note,
            "events": [self.event(row, inclusion[row[0]]) for row in every],
            "chains": [{"chain": key,
                        "bucket": [[b64(h), n, b64(head)] for h, n, head in proof.entries],
                        "path": [b64(node) for node in proof.path]}
                       for key, proof in proofs.items()],
            "state": state,
        }
        cosigned = self.cosignatures(checkpoint.note)
        if cosigned:
            payload["cosignatures"] = cosigned
        token = self.timestamp(checkpoint.note)
        if token is not None:
            payload["timestamp"] = base64.b64encode(token).decode("ascii")
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        platform_key, signer = ledger.platform_signer(issued)
        document = jws.sign(body, {"alg": jws.WRITTEN_ALGORITHM, "kid": platform_key.kid,
                                   "typ": MEDIA_TYPE}, signer.sign)
        return Extract(document, payload)

    def cosignatures(self, note: str) -> list[str]:
        """The witnesses' cosignatures of the checkpoint: asked for now from each configured
        witness (``witnesses.json``) that has not given one yet; those that refuse or cannot
        be reached are left out (the verifier's quorum decides whether that is enough)."""
        configured = witnesses.read_config(witnesses.config_file(self.ledger))
        if configured:
            have = {line.split(" ")[1] for line in witnesses.cosignatures_of(self.ledger, note)}
            missing = [w for w in configured if w.name not in have]
            if missing:
                witnesses.publish(self.ledger, missing, note=note)
        return witnesses.cosignatures_of(self.ledger, note)

    def timestamp(self, note: str) -> bytes | None:
        """The TSA's token for the checkpoint: asked for now if a TSA is configured
        (``tsa.json``) and none is kept; left out if the TSA cannot be reached."""
        token = timestamps.timestamp_of(self.ledger, note)
        config = timestamps.read_config(self.ledger)
        if token is None and config is not None:
            try:
                timestamps.timestamp(self.ledger, config, note)
            except (LedgerError, VerificationFailure):
                return None
            token = timestamps.timestamp_of(self.ledger, note)
        return token

    # -- reading, inside the locked transaction -------------------------------------------------

    def anchor(self, tx: Any, moment: datetime) -> Checkpoint:
        """The latest checkpoint if it covers the whole log, was issued at or after ``moment``
        and its key still signs; otherwise a new one."""
        c, log = tables.checkpoints, tables.log
        note = tx.execute(select(c.c.note).order_by(c.c.seq.desc()).limit(1)).scalar()
        last = tx.execute(select(log.c.position).order_by(log.c.position.desc()).limit(1)
                          ).scalar()
        size = 0 if last is None else int(last) + 1
        if note is not None:
            latest = parse_checkpoint(note)
            try:
                self.ledger.registry.check_signing_key(latest.key_name, PLATFORM,
                                                       latest.issued_at)
                usable = True
            except KeyRegistryError:
                usable = False
            if usable and latest.tree_size == size and latest.issued_at >= moment:
                return latest
        return self.ledger.recorder.checkpoint_in(tx)

    def chain_rows(self, tx: Any, key: str, size: int) -> list[Any]:
        log, events = tables.log, self.ledger.recorder.events_table
        where = (log.c.subject == key if not key.startswith("~")
                 else and_(log.c.subject.is_(None), log.c.stream == key[1:]))
        return list(tx.execute(
            select(log.c.position, events.c.id, _raw(events.c.originator_id),
                   events.c.originator_version, events.c.topic, _raw(events.c.state),
                   log.c.leaf_hash)
            .join(events, events.c.id == log.c.notification_id)
            .where(where, log.c.position < size)
            .order_by(log.c.position)
        ).all())

    @staticmethod
    def event(row: Any, proof: list[bytes]) -> dict[str, Any]:
        position, nid, raw_oid, version, topic, state, _ = row
        return {"position": position, "notification_id": nid, "originator_id": oid_text(raw_oid),
                "version": version, "topic": topic, "state": b64(bytes(state)),
                "proof": [b64(node) for node in proof]}


def log_nodes(tx: Any, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The Merkle tree's nodes (level, index) asked for: leaves from the log, inner nodes from
    the stored tree."""
    log, tree = tables.log, tables.tree
    found: dict[tuple[int, int], bytes] = {}
    leaves = sorted(idx for level, idx in wanted if level == 0)
    inner = sorted((level, idx) for level, idx in wanted if level > 0)
    for start in range(0, len(leaves), IN_CHUNK):
        for position, leaf in tx.execute(
                select(log.c.position, log.c.leaf_hash)
                .where(log.c.position.in_(leaves[start:start + IN_CHUNK]))):
            found[(0, int(position))] = bytes(leaf)
    found.update(tables.fetch_nodes(tx, tree, inner))
    return found


# -- what a court and a kept-checkpoint holder are given ---------------------------------------


class UntrustedListing(LedgerError):
    """The store's checkpoints do not check against the platform key trusted here."""


def checkpoint_listing(ledger: CreditLedger, since: int | None = None,
                       trusted: Sequence[bytes] | None = None) -> list[dict[str, Any]]:
    """Signed checkpoints from number ``since`` (default: the latest ten), each with the
    consistency proof from the one before it (`credit checkpoints --json`). With ``trusted``
    (the pinned platform key), nothing is listed unless the key registry starts from that key
    and every note listed is signed by a platform key valid at its time and extends the one
    before it: the platform does not hand out what it cannot vouch for."""
    if trusted is not None and ledger.platform_first_key not in trusted:
        raise UntrustedListing("the ledger's first platform key is not the trusted one: its "
                               "checkpoints are not listed")
    c = tables.checkpoints
    with ledger.engine.connect() as conn:
        last = conn.execute(select(func.max(c.c.seq))).scalar() or 0
        if since is not None and since > last:
            raise LedgerError(f"there is no checkpoint {since}; the latest is {last}")
        first = since if since is not None else max(last - 9, 1)
        rows = conn.execute(select(c.c.seq, c.c.note).where(c.c.seq >= first)
                            .order_by(c.c.seq)).all()
        nodes = stored_nodes(conn)
        listed: list[dict[str, Any]] = []
        previous: tuple[int, int] | None = None
        signed: Checkpoint | None = None
        for seq, note in rows:
            size = parse_checkpoint(note).tree_size
            item: dict[str, Any] = {"seq": seq, "tree_size": size, "note": note}
            proof: list[bytes] = []
            if previous is not None:
                proof = (merkle.consistency_proof(previous[1], size, nodes)
                         if 0 < previous[1] < size else [])
                item["consistency"] = {"from_seq": previous[0], "from_size": previous[1],
                                       "proof": [p.hex() for p in proof]}
            if trusted is not None:
                try:
                    checked = verify_checkpoint(note, registry_key(ledger.registry),
                                                f"checkpoint {seq}")
                    if signed is not None:
                        check_extends(signed, checked, proof, f"checkpoint {seq}",
                                      "the one before it")
                except VerificationFailure as exc:
                    raise UntrustedListing(f"{exc}: the checkpoints are not listed") from None
                signed = checked
            listed.append(item)
            previous = (seq, size)
        cosigned: dict[int, list[str]] = {}
        if listed and inspect(conn).has_table(tables.cosignatures.name):
            w = tables.cosignatures
            for seq, line in conn.execute(select(w.c.seq, w.c.line).where(
                    w.c.seq >= listed[0]["seq"]).order_by(w.c.seq, w.c.witness)):
                cosigned.setdefault(int(seq), []).append(str(line))
    for item in listed:  # witnesses' lines, each checkable with proofs.cosignature
        item["cosignatures"] = cosigned.get(item["seq"], [])
    return listed


class TrustedKeyUnreadable(LedgerError):
    """The platform public key a verifier was told to trust cannot be read."""


def verify_extract_file(file: Path, trusted_key_file: Path,
                        witnesses: Sequence[tuple[str, Path]] = (), quorum: int | None = None,
                        tsa_certificate: Path | None = None, tsa_roots: Sequence[Path] = ()
                        ) -> tuple[bool, dict[str, Any], str]:
    """(valid, JSON result, text) of the offline verifier on one extract file; with
    ``witnesses`` (name, PEM file), at least ``quorum`` of them (default: all) must have
    cosigned its checkpoint."""
    try:
        key = load_trusted_key(trusted_key_file)
        trusted = [TrustedWitness(name, load_trusted_key(path)) for name, path in witnesses]
        tsa = (TrustedTsa(load_certificate(tsa_certificate),
                          [load_certificate(path) for path in tsa_roots])
               if tsa_certificate is not None else None)
    except SystemExit as exc:
        raise TrustedKeyUnreadable(str(exc)) from None
    needed = len(trusted) if quorum is None else quorum
    if not 0 <= needed <= len(trusted):
        raise LedgerError(f"a quorum of {needed} among {len(trusted)} witnesses")
    return run(file, key, trusted, needed, tsa)
