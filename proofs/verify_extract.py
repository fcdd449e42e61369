"""Verify a signed record extract offline: ``python -m proofs.verify_extract FILE --trust KEY.pem``.

Needs the standard library and ``cryptography`` only (this folder, ``proofs/``, and what its
imports reach of ``domain/`` and ``keys/``, which need nothing else; ``credit verifier -o
FILE.pyz`` packs them into one file). No server, no database, no trust in the issuer beyond the
platform key you were given.

The checks, in order, each failing with a class of ``proofs.failures`` (input that cannot be
parsed is malformed; input that parses and fails a check is inauthentic) whose ``check`` name is
printed, with the fact that failed:

1. document           the file is a flattened JWS (RFC 7515) with alg Ed25519 (or EdDSA)
2. extract-signature  its signature verifies with the trusted platform key
3. payload            the payload is an extract of this format
4. order              events are listed once each, in log order
5. registry           the key registry events replay: the first registers the platform with its
                      own key, each later one is signed by a platform key valid before it
6. issuer             the extract's signing key is a platform key in that registry, valid when
                      issued, and it is the trusted key
7. checkpoint         the checkpoint is signed by a platform key valid at its time, was issued at
                      or after the as-of time and covers every event listed
8. envelope, key,     every event is a signed envelope whose key belonged to its actor and was
   signature          valid at its time (revocations included), and whose signature verifies
9. inclusion          every event's leaf is in the checkpoint's tree at its position
10. membership        every event belongs to the subject (its aggregate's first event names it),
                      the key registry or the policies
11. completeness      each of those three chains, recomputed from the events, is the one the
                      checkpoint's chain map holds: no event left out, added or reordered
12. state             the subject's state recomputed from the events equals the state in the
                      extract
13. witnesses         with ``--witness NAME KEY.pem`` (repeated) and ``--quorum K``: at least K of
                      those witnesses cosigned the extract's checkpoint (C2SP tlog-cosignature/v1,
                      the lines in ``cosignatures``); the failure names each one missing or wrong
14. timestamp         with ``--tsa-cert TSA.pem`` (and ``--tsa-root CA.pem``): the file's RFC 3161
                      token is the TSA's, over the checkpoint's note body, and its time is not
                      before the checkpoint's own (needs the rfc3161-client package)

With ``--checkpoints``: every note of a listing is signed by a trusted key (checkpoint), each
extends the one before it (consistency), and a kept note, itself signed, is among them.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.clock import CHINA_TIME
from domain.state import (
    COMPATIBLE_REDUCERS,
    REDUCER_VERSION,
    absence,
    stream_of,
    subject_state,
)
from keys.registry import PLATFORM, KeyRegistry, KeyRegistryError
from keys.signer import fingerprint, public_key_from_pem
from proofs import chain_map, envelope, jws, merkle, timestamps, verify_receipt
from proofs.checkpoint import Checkpoint
from proofs.checks import EventChecker, check_extends, registry_key, trusted_key, verify_checkpoint
from proofs.cosignature import CosignatureInvalid, verify_cosignature
from proofs.facts import fact_from_row
from proofs.failures import (
    ChainIncomplete,
    CheckpointInconsistent,
    CheckpointInvalid,
    EventsOutOfOrder,
    ExtractSignatureInvalid,
    InclusionInvalid,
    IssuerInvalid,
    MalformedDocument,
    MalformedPayload,
    MembershipInvalid,
    RegistryInvalid,
    StateMismatch,
    VerificationFailure,
    WitnessQuorumNotMet,
)
from proofs.registry_replay import RegistryReplay

EXTRACT_TYPE = "credit-ledger/extract/v1"
CONTEXT_STREAMS = {"Authority": chain_map.REGISTRY_CHAIN, "PolicyVersion": chain_map.POLICY_CHAIN}


# -- what is checked ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ListedEvent:
    position: int
    notification_id: int
    originator_id: str
    version: int
    topic: str
    state: bytes
    proof: tuple[bytes, ...]

    @property
    def row(self) -> tuple[int, str, int, str, bytes]:
        return self.notification_id, self.originator_id, self.version, self.topic, self.state

    @property
    def stream(self) -> str:
        return stream_of(self.topic)

    def where(self) -> str:
        return f"event at position {self.position} (notification {self.notification_id})"

    @cached_property
    def leaf(self) -> bytes:
        # inclusion and completeness both need it; hashing a policy's payload twice shows
        return envelope.leaf_hash(self.originator_id, self.version, self.topic, self.state)


@dataclass
class VerifiedExtract:
    """What a valid extract establishes, for the summary."""

    number: str
    subject: str
    as_of: datetime
    issued_at: datetime
    issuer: str
    checkpoint: Checkpoint
    counts: dict[str, int]
    state: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    witnesses: list[str] = field(default_factory=list)  # trusted witnesses that cosigned
    timestamp: timestamps.CheckedTimestamp | None = None

    def _timestamp(self) -> dict[str, Any]:
        if self.timestamp is None:
            return {}
        return {"timestamp": {"time": envelope.format_instant(self.timestamp.gen_time),
                              "tsa": self.timestamp.tsa}}

    def summary(self) -> dict[str, Any]:
        if self.state.get("absent"):
            return {"valid": True, "number": self.number, "subject": self.subject,
                    "absent": True, "statement": self.state["statement"],
                    "as_of": envelope.format_instant(self.as_of),
                    "issued_at": envelope.format_instant(self.issued_at), "issuer": self.issuer,
                    "checkpoint": {"tree_size": self.checkpoint.tree_size,
                                   "issued_at": envelope.format_instant(self.checkpoint.issued_at),
                                   "key": self.checkpoint.key_name},
                    "events": self.counts, "reducer": self.state["reducer"],
                    "witnesses": self.witnesses, **self._timestamp()}
        grade = self.state["grade"]
        active = [x for x in self.state["listings"] if x["status"] == "active"]
        return {
            "valid": True,
            "number": self.number,
            "subject": self.subject,
            "name": self.state["name"],
            "as_of": envelope.format_instant(self.as_of),
            "issued_at": envelope.format_instant(self.issued_at),
            "issuer": self.issuer,
            "checkpoint": {"tree_size": self.checkpoint.tree_size,
                           "issued_at": envelope.format_instant(self.checkpoint.issued_at),
                           "key": self.checkpoint.key_name},
            "events": self.counts,
            "grade": {k: grade[k] for k in ("grade", "points", "policy", "override")},
            "lists": [{"list": x["list"], "number": x["number"], "start": x["start"],
                       "ends_on": x["ends_on"]} for x in active],
            "records": len(self.state["records"]),
            "records_in_force": sum(1 for r in self.state["records"]
                                    if r["status"] == "in_force"),
            "reducer": self.state["reducer"],
            "witnesses": self.witnesses,
            **self._timestamp(),
        }


T = TypeVar("T")


class _Clock:
    """Seconds spent per check (the bench reports the share spent on signatures)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def run(self, name: str, step: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return step()
        finally:
            self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - started


def verify_extract(document: Any, trusted_key: bytes, witnesses: Sequence[TrustedWitness] = (),
                   quorum: int = 0, tsa: TrustedTsa | None = None) -> VerifiedExtract:
    """Run every check on a parsed extract file; raise the first VerificationFailure."""
    clock = _Clock()
    signed = clock.run("document", lambda: check_document(document))
    clock.run("signature", lambda: check_outer_signature(signed, trusted_key))
    payload = clock.run("payload", lambda: read_payload(signed.payload))
    events = clock.run("payload", lambda: read_events(payload["events"]))
    clock.run("order", lambda: check_order(events))
    registry_events = [e for e in events if e.stream == "Authority"]
    registry = clock.run("registry", lambda: replay_registry(registry_events))
    issued_at = _instant(payload["issued_at"], "issued_at")
    as_of = _instant(payload["as_of"], "as_of")
    issuer = clock.run("issuer",
                       lambda: check_issuer(signed.header, registry, trusted_key, issued_at))
    checkpoint = clock.run("checkpoint",
                           lambda: check_checkpoint(payload["checkpoint"], registry, as_of,
                                                    issued_at, events))
    clock.run("events", lambda: check_event_signatures(
        [e for e in events if e.stream != "Authority"], registry))
    clock.run("inclusion", lambda: check_inclusion(events, checkpoint))
    subject = payload["subject"]
    members = clock.run("membership", lambda: assign_chains(events, subject))
    clock.run("completeness", lambda: check_completeness(members, payload["chains"], checkpoint,
                                                         subject))
    state = clock.run("state", lambda: check_state(payload["state"], subject, members, as_of,
                                                   checkpoint.tree_size))
    cosigned = clock.run("witnesses", lambda: check_witnesses(
        payload.get("cosignatures", []), checkpoint, witnesses, quorum))
    stamped = (clock.run("timestamp", lambda: check_checkpoint_timestamp(
        payload.get("timestamp"), checkpoint, tsa)) if tsa is not None else None)
    counts = {"subject": len(members[subject]), "registry": len(members[chain_map.REGISTRY_CHAIN]),
              "policies": len(members[chain_map.POLICY_CHAIN])}
    return VerifiedExtract(payload["number"], subject, as_of, issued_at, issuer, checkpoint,
                           counts, state, clock.spent, cosigned, stamped)


# -- 14: the TSA's time -----------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedTsa:
    certificate: Any  # cryptography.x509.Certificate
    roots: list[Any]


CLOCK_SKEW = 300  # seconds the platform's clock may run ahead of the TSA's


def check_checkpoint_timestamp(token: Any, checkpoint: Checkpoint,
                               tsa: TrustedTsa) -> timestamps.CheckedTimestamp:
    """The TSA's time for the checkpoint: its token over the note body, by the trusted TSA, not
    earlier than the checkpoint says it was made."""
    if not isinstance(token, str):
        raise timestamps.TimestampInvalid("the extract carries no timestamp of its checkpoint")
    raw = _b64(token, "timestamp")
    checked = timestamps.check_timestamp(raw, checkpoint.body.encode("utf-8"), tsa.certificate,
                                         tsa.roots)
    if (checkpoint.issued_at - checked.gen_time).total_seconds() > CLOCK_SKEW:
        raise timestamps.TimestampInvalid(
            f"the TSA timestamped the checkpoint at {envelope.format_instant(checked.gen_time)}, "
            f"before its own time {envelope.format_instant(checkpoint.issued_at)}")
    return checked


# -- 13: the verifier's witness policy ----------------------------------------------------------


@dataclass(frozen=True)
class TrustedWitness:
    name: str
    public_key: bytes


def check_witnesses(lines: Any, checkpoint: Checkpoint, witnesses: Sequence[TrustedWitness],
                    quorum: int) -> list[str]:
    """The names of the trusted witnesses whose cosignature of the checkpoint verifies;
    WitnessQuorumNotMet, naming each missing or wrong one, if fewer than ``quorum``."""
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise MalformedPayload("cosignatures is not a list of signature lines")
    good: list[str] = []
    problems: list[str] = []
    for witness in witnesses:
        mine = [line for line in lines if line.split(" ")[1:2] == [witness.name]]
        if not mine:
            problems.append(f"{witness.name}: no cosignature")
            continue
        reasons = []
        for line in mine:
            try:
                verify_cosignature(line, witness.name, witness.public_key, checkpoint.body)
            except CosignatureInvalid as exc:
                reasons.append(str(exc))
                continue
            good.append(witness.name)
            break
        else:
            problems.append("; ".join(reasons))
    if len(good) < quorum:
        raise WitnessQuorumNotMet(f"{len(good)} of the {quorum} witness cosignatures asked for "
                                  f"({', '.join(problems)})")
    return good


# -- 1-3: the document ------------------------------------------------------------------------


def check_document(document: Any) -> jws.SignedDocument:
    try:
        return jws.parse(document)
    except jws.JWSError as exc:
        raise MalformedDocument(str(exc)) from None


def check_outer_signature(signed: jws.SignedDocument, trusted_key: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(trusted_key).verify(signed.signature,
                                                               signed.signing_input)
    except (InvalidSignature, ValueError):
        raise ExtractSignatureInvalid(
            f"the extract's signature (key {signed.header.get('kid')!r}) does not verify with "
            f"the trusted platform key {fingerprint(trusted_key)}") from None


_PAYLOAD_FIELDS: dict[str, type] = {
    "type": str, "number": str, "subject": str, "as_of": str, "issued_at": str,
    "checkpoint": str, "events": list, "chains": list, "state": dict,
}


def read_payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise MalformedPayload("the signed payload is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedPayload("the signed payload is not a JSON object")
    if payload.get("type") != EXTRACT_TYPE:
        raise MalformedPayload(f"the payload is not a {EXTRACT_TYPE} (type "
                               f"{payload.get('type')!r})")
    for name, kind in _PAYLOAD_FIELDS.items():
        if not isinstance(payload.get(name), kind):
            raise MalformedPayload(f"the payload's {name!r} is missing or not a {kind.__name__}")
    return payload


def _instant(text: str, name: str) -> datetime:
    try:
        return envelope.parse_instant(text)
    except ValueError:
        raise MalformedPayload(f"the payload's {name!r} is not a UTC time: {text!r}") from None


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise MalformedPayload(f"{what} is not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise MalformedPayload(f"{what} is not base64") from None


def read_events(items: Sequence[Any]) -> list[ListedEvent]:
    events = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedPayload(f"event {i} is not an object")
        try:
            position, nid, version = item["position"], item["notification_id"], item["version"]
            oid, topic = item["originator_id"], item["topic"]
            proof = item["proof"]
        except KeyError as exc:
            raise MalformedPayload(f"event {i} has no {exc.args[0]!r}") from None
        if not all(isinstance(v, int) and not isinstance(v, bool)
                   for v in (position, nid, version)):
            raise MalformedPayload(f"event {i}: position, notification id and version are "
                                   "integers")
        if not isinstance(oid, str) or not isinstance(topic, str) or not isinstance(proof, list):
            raise MalformedPayload(f"event {i}: originator id, topic and proof have the wrong "
                                   "types")
        events.append(ListedEvent(position, nid, oid, version, topic,
                                  _b64(item.get("state"), f"event {i}'s state"),
                                  tuple(_b64(p, f"event {i}'s proof") for p in proof)))
    return events


# -- 4-7: order, registry, issuer, checkpoint -------------------------------------------------


def check_order(events: Sequence[ListedEvent]) -> None:
    for before, after in itertools.pairwise(events):
        if after.position <= before.position:
            raise EventsOutOfOrder(
                f"{after.where()} is listed after position {before.position}: the extract's "
                "events are not in log order")
        if after.notification_id <= before.notification_id:
            raise EventsOutOfOrder(
                f"{after.where()} is listed after notification {before.notification_id}: "
                "notification ids must rise with positions")


def replay_registry(events: Sequence[ListedEvent]) -> KeyRegistry:
    replay = RegistryReplay()
    for event in events:
        replay.feed(*event.row)
        if replay.failures:
            failure = replay.failures[0]
            raise RegistryInvalid(f"key event at notification {failure.notification_id}: "
                                  f"{failure.reason}")
    if replay.genesis_key is None:
        raise RegistryInvalid("the extract holds no key registry")
    return replay.registry


def check_issuer(header: dict[str, Any], registry: KeyRegistry, trusted_key: bytes,
                 issued_at: datetime) -> str:
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise IssuerInvalid("the JWS header names no key (kid)")
    try:
        key = registry.check_signing_key(kid, PLATFORM, issued_at)
    except KeyRegistryError as exc:
        raise IssuerInvalid(f"the extract's signing key: {exc}") from None
    if key.public_key != trusted_key:
        raise IssuerInvalid(f"the registry's key {kid} ({fingerprint(key.public_key)}) is not the "
                            f"trusted platform key ({fingerprint(trusted_key)})")
    return kid


def check_checkpoint(note: str, registry: KeyRegistry, as_of: datetime, issued_at: datetime,
                     events: Sequence[ListedEvent]) -> Checkpoint:
    checkpoint = verify_checkpoint(note, registry_key(registry), "the checkpoint")
    stamp = envelope.format_instant(checkpoint.issued_at)
    if checkpoint.issued_at < as_of:
        raise CheckpointInvalid(
            f"the checkpoint was issued at {stamp}, before the as-of time "
            f"{envelope.format_instant(as_of)}: it cannot show every event up to then")
    if checkpoint.issued_at > issued_at:
        raise CheckpointInvalid(f"the checkpoint was issued at {stamp}, after the extract")
    beyond = [e for e in events if e.position >= checkpoint.tree_size]
    if beyond:
        raise CheckpointInvalid(f"{beyond[0].where()} lies beyond the checkpoint's "
                                f"{checkpoint.tree_size} events")
    return checkpoint


# -- 8-9: each event ----------------------------------------------------------------------------


def check_event_signatures(events: Sequence[ListedEvent], registry: KeyRegistry) -> None:
    checker = EventChecker(registry)
    rows = [event.row for event in events]
    cores = min(os.cpu_count() or 1, 8)
    if cores < 2 or len(rows) < 32:
        results = [checker.check(*row) for row in rows]
    else:
        # cryptography releases the GIL while it verifies: threads use every core
        size = -(-len(rows) // cores)
        with ThreadPoolExecutor(max_workers=cores) as pool:
            parts = pool.map(lambda part: [checker.check(*row) for row in part],
                             [rows[i:i + size] for i in range(0, len(rows), size)])
            results = [result for part in parts for result in part]
    for event, failed in zip(events, results, strict=True):
        if failed is not None:  # the first failure in log order, whichever thread found it
            raise type(failed)(f"{event.where()}: {failed.fact}", event.notification_id,
                               event.originator_id, event.version)


def check_inclusion(events: Sequence[ListedEvent], checkpoint: Checkpoint) -> None:
    for event in events:
        try:
            merkle.verify_inclusion(event.position, checkpoint.tree_size, event.leaf, event.proof,
                                    checkpoint.root_hash)
        except merkle.ProofError as exc:
            raise InclusionInvalid(f"{event.where()}: {exc} of the checkpoint "
                                   f"(size {checkpoint.tree_size})") from None


# -- 10-11: membership and completeness -------------------------------------------------------


def assign_chains(events: Sequence[ListedEvent], subject: str) -> dict[str, list[ListedEvent]]:
    """Each event's chain, from its content alone: its kind for keys and policies, else the
    subject its aggregate's first event names."""
    members: dict[str, list[ListedEvent]] = {subject: [], chain_map.REGISTRY_CHAIN: [],
                                             chain_map.POLICY_CHAIN: []}
    subject_of: dict[str, str | None] = {}
    for event in events:
        context = CONTEXT_STREAMS.get(event.stream)
        if context is not None:
            members[context].append(event)
            continue
        if event.version == 1:
            try:
                data = envelope.decode_payload(envelope.decode(event.state).payload)
            except ValueError as exc:
                raise MembershipInvalid(f"{event.where()}: unreadable payload: {exc}") from None
            named = data.get("subject")
            subject_of[event.originator_id] = named if isinstance(named, str) else None
        if event.originator_id not in subject_of:
            raise MembershipInvalid(f"{event.where()}: the extract lacks its aggregate's first "
                                    "event, so whose it is cannot be shown")
        owner = subject_of[event.originator_id]
        if owner != subject:
            raise MembershipInvalid(f"{event.where()} is about {owner!r}, not {subject!r}")
        members[subject].append(event)
    return members


def check_completeness(members: dict[str, list[ListedEvent]], proofs: Sequence[Any],
                       checkpoint: Checkpoint, subject: str) -> None:
    by_chain: dict[str, Any] = {}
    for item in proofs:
        if not isinstance(item, dict) or not isinstance(item.get("chain"), str):
            raise MalformedPayload("a chain proof is not an object with a 'chain'")
        by_chain[item["chain"]] = item
    for key, listed in members.items():
        item = by_chain.get(key)
        if item is None:
            raise ChainIncomplete(f"the extract has no map proof for chain {key!r}")
        try:
            entries = tuple((_b64(h, "a bucket key hash"), n, _b64(head, "a bucket head"))
                            for h, n, head in item["bucket"])
            path = tuple(_b64(node, "a map path hash") for node in item["path"])
        except (KeyError, TypeError, ValueError):
            raise MalformedPayload(f"the map proof of chain {key!r} is malformed") from None
        if any(not isinstance(n, int) or isinstance(n, bool) for _, n, _ in entries):
            raise MalformedPayload(f"the map proof of chain {key!r} has a non-integer length")
        length, head = chain_map.chain_head(e.leaf for e in listed)
        try:
            chain_map.MapProof(key, entries, path).check(length, head, checkpoint.chain_root)
        except chain_map.MapProofError as exc:
            raise ChainIncomplete(str(exc)) from None


# -- 12: the derived state ----------------------------------------------------------------------


def _first_difference(claimed: Any, computed: Any, path: str) -> str | None:
    if isinstance(claimed, dict) and isinstance(computed, dict):
        for key in sorted(set(claimed) | set(computed)):
            if key not in claimed or key not in computed:
                return f"{path}.{key}"
            found = _first_difference(claimed[key], computed[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(claimed, list) and isinstance(computed, list):
        if len(claimed) != len(computed):
            return f"{path} (length)"
        for i, (a, b) in enumerate(zip(claimed, computed, strict=True)):
            found = _first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if claimed == computed else path


def _at(value: Any, path: str) -> Any:
    for part in path.replace("[", ".[").split(".")[1:]:
        if part.startswith("["):
            value = value[int(part[1:].split("]")[0])] if isinstance(value, list) else None
        else:
            value = value.get(part.split(" ")[0]) if isinstance(value, dict) else None
    return value


def check_state(claimed: dict[str, Any], subject: str, members: dict[str, list[ListedEvent]],
                as_of: datetime, tree_size: int) -> dict[str, Any]:
    reducer = claimed.get("reducer")
    if reducer != REDUCER_VERSION and reducer not in COMPATIBLE_REDUCERS:
        raise StateMismatch(f"the state was computed by reducer {reducer!r}; this verifier has "
                            f"{REDUCER_VERSION!r} (and reproduces {', '.join(COMPATIBLE_REDUCERS)})")

    def facts(key: str) -> list[Any]:
        return [fact_from_row(e.position, e.notification_id, e.originator_id, e.version,
                              e.topic, e.state) for e in members[key]]

    registry = facts(chain_map.REGISTRY_CHAIN)
    if not registry or as_of < registry[0].recorded_at:
        raise StateMismatch(f"the as-of time {envelope.format_instant(as_of)} precedes the "
                            "ledger's first event: the ledger held nothing then")
    # no event about the subject: the extract states that, with the map proof of the empty
    # chain, and no grade
    computed = (subject_state(subject, facts(subject), facts(chain_map.POLICY_CHAIN),
                              as_of.astimezone(CHINA_TIME).date(), known_at=as_of)
                if members[subject] else absence(subject, as_of, tree_size))
    # an extract from an earlier reducer holds when this one gives the very same state
    computed = dict(json.loads(json.dumps({**computed, "reducer": reducer})))
    if claimed == computed:  # the common case; the walk below only names the difference
        return computed
    where = _first_difference(claimed, computed, "state")
    if where is not None:
        raise StateMismatch(f"{where}: the extract says {_at(claimed, where)!r}, the events "
                            f"give {_at(computed, where)!r}")
    return computed


# -- the command ------------------------------------------------------------------------------


def render(result: VerifiedExtract) -> str:
    s = result.summary()
    if s.get("absent"):
        return "\n".join([
            f"VALID  credit extract {s['number']}",
            f"  subject     {s['subject']}",
            f"  as of       {s['as_of']} ({result.as_of.astimezone(CHINA_TIME).date()} China "
            "time)",
            f"  issued      {s['issued_at']} by {s['issuer']}",
            f"  statement   {s['statement']}: the checkpoint's chain map proves the subject's "
            "chain empty; no grade",
        ])
    grade = s["grade"]
    lists = ", ".join(f"{x['list']} list {x['number']} ({x['start']} to {x['ends_on']})"
                      for x in s["lists"]) or "none"
    return "\n".join([
        f"VALID  credit extract {s['number']}",
        f"  subject     {s['subject']}  {s['name'] or ''}".rstrip(),
        f"  as of       {s['as_of']} ({result.as_of.astimezone(CHINA_TIME).date()} China time)",
        f"  issued      {s['issued_at']} by {s['issuer']}",
        f"  checkpoint  {s['checkpoint']['tree_size']} events, issued "
        f"{s['checkpoint']['issued_at']}, signed by {s['checkpoint']['key']}",
        f"  events      {s['events']['subject']} about the subject, {s['events']['registry']} key "
        f"registry, {s['events']['policies']} policy: every signature, inclusion proof and "
        "chain checks",
        f"  grade       {grade['grade']} ({grade['points']} points, policy {grade['policy']})"
        + (f"; {grade['override']}" if grade["override"] else ""),
        f"  lists       {lists}",
        f"  records     {s['records']} ({s['records_in_force']} in force), "
        f"state recomputed by {s['reducer']}",
        *([f"  witnesses   cosigned by {', '.join(s['witnesses'])}"] if s["witnesses"] else []),
        *([f"  timestamp   {s['timestamp']['time']} by {s['timestamp']['tsa']} (RFC 3161)"]
          if "timestamp" in s else []),
    ])


def load_certificate(path: Path) -> Any:
    from cryptography import x509
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise SystemExit(f"cannot read the certificate {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SystemExit(f"{path}: not a PEM certificate ({exc})") from None


def load_trusted_key(path: Path) -> bytes:
    try:
        return public_key_from_pem(path.read_bytes())
    except OSError as exc:
        raise SystemExit(f"cannot read the trusted key {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SystemExit(f"{path}: {exc}") from None


Outcome = tuple[bool, dict[str, Any], str]  # (valid, JSON result, text)


def invalid(failure: VerificationFailure) -> Outcome:
    data: dict[str, Any] = {"valid": False}
    data.update((k, v) for k, v in failure.as_dict().items() if v is not None)
    return False, data, f"INVALID  {failure.check}: {failure}"


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise MalformedDocument(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise MalformedDocument(f"{what} is not JSON") from None


def run(path: Path, trusted_key: bytes, witnesses: Sequence[TrustedWitness] = (),
        quorum: int = 0, tsa: TrustedTsa | None = None) -> Outcome:
    """The verdict on one extract file (with a witness policy: ``quorum`` of ``witnesses``), or
    on a credit-check receipt."""
    document = None
    try:
        document = _read_json(path, "the file")
        if verify_receipt.is_receipt(check_document(document)):
            receipt = check_receipt(document, trusted_key)
            return True, receipt.summary(), render_receipt(receipt)
        result = verify_extract(document, trusted_key, witnesses, quorum, tsa)
    except VerificationFailure as failure:
        return invalid(failure)
    return True, result.summary(), render(result)


def check_receipt(document: Any, key: bytes) -> verify_receipt.VerifiedReceipt:
    """Every check of a credit-check receipt (FORMAT.md §10); the first failure raised."""
    signed = check_document(document)
    check_outer_signature(signed, key)
    payload = verify_receipt.read_receipt(signed.payload)
    (event,) = read_events(payload["events"])
    checked_at = _instant(payload["checked_at"], "checked_at")
    issued_at = _instant(payload["issued_at"], "issued_at")
    checkpoint = verify_receipt.check_receipt_checkpoint(payload["checkpoint"], key, checked_at,
                                                         issued_at)
    check_inclusion([event], checkpoint)
    verify_receipt.check_recorded(payload, event.state, event.topic, event.originator_id)
    return verify_receipt.VerifiedReceipt(payload, checkpoint, event.position)


def render_receipt(receipt: verify_receipt.VerifiedReceipt) -> str:
    s = receipt.summary()
    barred = "BARRED from this matter" if s["barred"] else "not barred from this matter"
    return (f"VALID  credit-check receipt {s['number']}: {s['subject']} checked by "
            f"{s['checked_by']} for {s['matter']} (case {s['case_number']}) at "
            f"{s['checked_at']}: {barred}; grade {s['grade']['grade']}; recorded at log "
            f"position {s['log_position']} under checkpoint of {s['checkpoint']['tree_size']} "
            f"events")


# -- checkpoint listings: has the log only grown? --------------------------------------------


def verify_checkpoint_listing(listing: Any, trusted_keys: Sequence[bytes],
                              kept: str | None = None) -> list[Checkpoint]:
    """Check a `credit checkpoints --json` listing: every note signed by a trusted platform key,
    each consistent with the one before it (RFC 9162), and the kept note, if given, among them.
    Raises CheckpointInvalid naming the first checkpoint that fails."""
    items = listing.get("checkpoints") if isinstance(listing, dict) else None
    if not isinstance(items, list) or not items:
        raise MalformedPayload("the file is not a checkpoint listing (`credit checkpoints --json`)")
    signed_by_trusted = trusted_key(trusted_keys)
    checked: list[Checkpoint] = []
    for item in items:
        seq = item.get("seq") if isinstance(item, dict) else None
        note = item.get("note") if isinstance(item, dict) else None
        if not isinstance(note, str):
            raise MalformedPayload(f"checkpoint {seq} has no note")
        checkpoint = verify_checkpoint(note, signed_by_trusted, f"checkpoint {seq}")
        if checked:
            consistency = item.get("consistency") or {}
            try:
                proof = [bytes.fromhex(h) for h in consistency.get("proof", [])]
            except (ValueError, TypeError, AttributeError):
                raise MalformedPayload(f"checkpoint {seq}: the consistency proof is not a list "
                                       "of hex hashes") from None
            check_extends(checked[-1], checkpoint, proof, f"checkpoint {seq}",
                          "the one before it")
        checked.append(checkpoint)
    if kept is not None:
        # the kept note is checked like the others: an unsigned one proves nothing
        mine = verify_checkpoint(kept, signed_by_trusted, "the kept checkpoint")
        same_size = [c for c in checked if c.tree_size == mine.tree_size]
        if not same_size:
            raise CheckpointInvalid(f"the listing has no checkpoint of size {mine.tree_size} to "
                                    "compare the kept one with: ask for one from before it")
        if all(c.root_hash != mine.root_hash for c in same_size):
            raise CheckpointInconsistent(f"the kept checkpoint of size {mine.tree_size} has "
                                         "another root than the listing's: the log was "
                                         "rewritten")
    return checked


def _run_listing(path: Path, trusted: Sequence[bytes], kept: Path | None) -> Outcome:
    try:
        listing = _read_json(path, "the listing")
        try:
            kept_note = kept.read_text(encoding="utf-8") if kept is not None else None
        except (OSError, UnicodeDecodeError) as exc:
            raise MalformedDocument(f"cannot read the kept checkpoint {kept}: {exc}") from None
        checked = verify_checkpoint_listing(listing, trusted, kept_note)
    except VerificationFailure as failure:
        return invalid(failure)
    first, last = checked[0], checked[-1]
    data = {"valid": True, "checkpoints": len(checked), "from_size": first.tree_size,
            "to_size": last.tree_size, "to_issued_at": envelope.format_instant(last.issued_at)}
    return True, data, (f"VALID  {len(checked)} checkpoints, each signed and consistent with the one "
                        f"before: the log grew from {first.tree_size} to {last.tree_size} events "
                        "without a change to what it held"
                        + (" (the kept checkpoint is among them)" if kept is not None else ""))


def _signing_key(path: Path, trusted: Sequence[bytes]) -> bytes:
    """Of several trusted keys, the one the extract's outer signature verifies with (else the
    first, whose check then reports the failure)."""
    try:
        signed = jws.parse(json.loads(path.read_bytes()))
    except (OSError, ValueError):
        return trusted[0]
    for key in trusted:
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(signed.signature, signed.signing_input)
            return key
        except (InvalidSignature, ValueError):
            continue
    return trusted[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verify_extract",
        description="Check a Credit Ledger record extract offline, with the platform's public "
                    "key only. Prints VALID with a summary, or INVALID naming the failed check; "
                    "exits 0 or 1. With --checkpoints, check a checkpoint listing instead.")
    parser.add_argument("file", type=Path, help="the extract (JSON), or with --checkpoints the "
                        "output of `credit checkpoints --json`")
    parser.add_argument("--trust", type=Path, required=True, action="append",
                        metavar="PLATFORM_KEY.pem",
                        help="the platform's public key (PEM), as `credit keys export platform` "
                             "prints it; repeat for older platform keys")
    parser.add_argument("--checkpoints", action="store_true",
                        help="FILE is a checkpoint listing: check signatures and consistency")
    parser.add_argument("--kept", type=Path, metavar="NOTE",
                        help="with --checkpoints: a checkpoint note you kept, to find in it")
    parser.add_argument("--witness", nargs=2, action="append", default=[],
                        metavar=("NAME", "WITNESS_KEY.pem"),
                        help="a witness whose cosignature of the checkpoint counts (repeat)")
    parser.add_argument("--quorum", type=int, metavar="K",
                        help="how many of the --witness must have cosigned (default: all)")
    parser.add_argument("--tsa-cert", type=Path, metavar="TSA.pem",
                        help="the timestamping authority's certificate: the checkpoint's RFC 3161 "
                             "timestamp must be its (needs rfc3161-client)")
    parser.add_argument("--tsa-root", type=Path, action="append", default=[], metavar="CA.pem",
                        help="a root the TSA certificate chains to (repeat)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    trusted = [load_trusted_key(path) for path in args.trust]
    witnesses = [TrustedWitness(name, load_trusted_key(Path(path)))
                 for name, path in args.witness]
    quorum = len(witnesses) if args.quorum is None else args.quorum
    if not 0 <= quorum <= len(witnesses):
        parser.error(f"--quorum {quorum}: there are {len(witnesses)} witnesses")
    if args.checkpoints:
        valid, data, text = _run_listing(args.file, trusted, args.kept)
    else:
        tsa = (TrustedTsa(load_certificate(args.tsa_cert),
                          [load_certificate(path) for path in args.tsa_root])
               if args.tsa_cert else None)
        valid, data, text = run(args.file, _signing_key(args.file, trusted), witnesses, quorum,
                                tsa)
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else text)
    return 0 if valid else 1


def command() -> NoReturn:
    """The entry point of the one-file verifier (zipapp ignores what ``main`` returns)."""
    sys.exit(main())


if __name__ == "__main__":
    command()
