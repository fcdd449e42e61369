"""The stored form of a signed event, exactly as docs/FORMAT.md specifies it.

Standard library only: courts and auditors run this code with nothing but a public key.

Stored state of an event (the ``state`` column)::

    {"v":1,"actor":"tax","at":"2026-11-27T08:00:00.000000+00:00","kid":"tax-2026-1","sig":"<b64>"}\\n
    <payload bytes: the event's other attributes as compact JSON>

Signed bytes (domain-separated; every header field is free of newlines)::

    credit-ledger/event/v1\\n <originator id>\\n <version>\\n <topic>\\n <actor>\\n <at>\\n <kid>\\n <payload>

Merkle leaf bytes of a stored event (the leaf hash is SHA-256(0x00 || leaf bytes), RFC 6962)::

    credit-ledger/leaf/v1\\n <originator id>\\n <version>\\n <topic>\\n <state>
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

ENVELOPE_VERSION = 1
EVENT_CONTEXT = b"credit-ledger/event/v1\n"
LEAF_CONTEXT = b"credit-ledger/leaf/v1\n"
NL = b"\n"


class MalformedEnvelope(ValueError):
    """Stored state that is not a signed envelope of this format."""


@dataclass(frozen=True)
class Envelope:
    """A parsed stored state: who signed, when, with which key, and the payload bytes."""

    actor: str
    at: str
    kid: str
    signature: bytes
    payload: bytes

    @property
    def recorded_at(self) -> datetime:
        return parse_instant(self.at)


def format_instant(moment: datetime) -> str:
    """The one text form of a recorded time: UTC, microseconds, ``+00:00``."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no timezone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text} has no timezone")
    return moment


_HEADER_FIELDS = ("originator id", "version", "topic", "actor", "at", "kid")


def signed_bytes(
    originator_id: UUID | str, version: int, topic: str, actor: str, at: str, kid: str,
    payload: bytes,
) -> bytes:
    """The exact bytes an event's signature covers (docs/FORMAT.md §2)."""
    fields = (str(originator_id), str(int(version)), topic, actor, at, kid)
    header = "\n".join(fields)
    if header.count("\n") != 5:
        bad = next(name for name, value in zip(_HEADER_FIELDS, fields, strict=True)
                   if "\n" in value)
        raise ValueError(f"{bad} must not contain a newline")
    return EVENT_CONTEXT + header.encode("utf-8") + NL + payload


_SAFE_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def encode(actor: str, at: str, kid: str, signature: bytes, payload: bytes) -> bytes:
    """The stored state: a one-line JSON header, a newline, the payload."""
    if not (_SAFE_NAME.match(actor) and _SAFE_NAME.match(kid)):
        raise ValueError(f"actor {actor!r} and key id {kid!r} must be lower-case names")
    # Every field is from a known alphabet, so the header is written directly (json.dumps costs
    # as much as the rest of the envelope); decode() parses it as ordinary JSON.
    sig = base64.b64encode(signature).decode("ascii")
    header = (f'{{"v":{ENVELOPE_VERSION},"actor":"{actor}","at":"{at}","kid":"{kid}",'
              f'"sig":"{sig}"}}')
    return header.encode("ascii") + NL + payload


_HEADER_DECODER = json.JSONDecoder()


# The header exactly as ``encode`` writes it: matched directly, which is several times faster
# than parsing JSON; anything else (an older writer, a hand-made envelope) is parsed as JSON.
_WRITTEN_HEADER = re.compile(
    rb'\{"v":1,"actor":"([a-z][a-z0-9-]*)","at":"([0-9T:.+-]+)","kid":"([a-z][a-z0-9-]*)",'
    rb'"sig":"([A-Za-z0-9+/]{86}==)"\}\n')


def header_fields(state: bytes) -> tuple[str, str, str, bytes]:
    """(actor, at, kid, payload) of a stored state, without checking the signature's encoding:
    for readers that rebuild state from events already verified (read models, history)."""
    match = _WRITTEN_HEADER.match(state)
    if match is not None:
        return (match[1].decode("ascii"), match[2].decode("ascii"), match[3].decode("ascii"),
                state[match.end():])
    sealed = decode(state)
    return sealed.actor, sealed.at, sealed.kid, sealed.payload


def decode(state: bytes) -> Envelope:
    """Parse stored state; raise MalformedEnvelope saying what is wrong with it."""
    match = _WRITTEN_HEADER.match(state)
    if match is not None:  # as written: the JSON parse below would give exactly these fields
        return Envelope(match[1].decode("ascii"), match[2].decode("ascii"),
                        match[3].decode("ascii"), base64.b64decode(match[4], validate=True),
                        state[match.end():])
    header_bytes, sep, payload = state.partition(NL)
    if not sep:
        raise MalformedEnvelope("stored state has no envelope header line")
    try:
        header = _HEADER_DECODER.decode(header_bytes.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEnvelope(f"envelope header is not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("v") != ENVELOPE_VERSION:
        raise MalformedEnvelope("envelope header is not a version 1 header")
    try:
        actor, at, kid, sig = header["actor"], header["at"], header["kid"], header["sig"]
    except KeyError as exc:
        raise MalformedEnvelope(f"envelope header has no {exc.args[0]!r}") from None
    if not all(isinstance(x, str) for x in (actor, at, kid, sig)):
        raise MalformedEnvelope("envelope header fields must be strings")
    try:
        signature = base64.b64decode(sig, validate=True)
    except ValueError:
        raise MalformedEnvelope("envelope signature is not base64") from None
    if len(signature) != 64:
        raise MalformedEnvelope(f"envelope signature has {len(signature)} bytes, not 64")
    return Envelope(actor, at, kid, signature, payload)


def leaf_bytes(originator_id: UUID | str, version: int, topic: str, state: bytes) -> bytes:
    """What a Merkle leaf commits to: the whole stored event except its position."""
    return b"".join((
        LEAF_CONTEXT,
        str(originator_id).encode("ascii"), NL,
        str(int(version)).encode("ascii"), NL,
        topic.encode("utf-8"), NL,
        state,
    ))


def leaf_hash(originator_id: UUID | str, version: int, topic: str, state: bytes) -> bytes:
    """RFC 6962 leaf hash of a stored event: SHA-256(0x00 || leaf bytes)."""
    return hashlib.sha256(b"\x00" + leaf_bytes(originator_id, version, topic, state)).digest()


# -- payloads ---------------------------------------------------------------------------------
# Payloads are eventsourcing's JSONTranscoder output: plain JSON, where a value of a richer type is
# written {"_type_": name, "_data_": text}. These are the names the ledger registers.


def _decode_typed(obj: dict[str, Any]) -> Any:
    if len(obj) == 2 and "_type_" in obj and "_data_" in obj:
        kind, data = obj["_type_"], obj["_data_"]
        if kind == "datetime_iso":
            return datetime.fromisoformat(data)
        if kind == "date_iso":
            return date.fromisoformat(data)
        if kind == "uuid_hex":
            return UUID(data)
        if kind == "decimal_str":
            return Decimal(data)
        raise ValueError(f"unknown payload type {kind!r}")
    return obj


_PAYLOAD_DECODER = json.JSONDecoder(object_hook=_decode_typed)  # one decoder, not one per call
# The scanner ``decode`` runs, called directly for a payload as written (no whitespace around
# it): ``decode``'s own work around it cost more than the scan of a typical payload.
_SCAN_PAYLOAD = _PAYLOAD_DECODER.scan_once  # type: ignore[attr-defined]  # (not in typeshed)


def decode_payload(payload: bytes) -> dict[str, Any]:
    """The payload as a dict, with typed values restored (datetime, date, UUID, Decimal)."""
    text = payload.decode("utf-8")
    try:
        value, end = _SCAN_PAYLOAD(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):  # whitespace, more after the value, or no value: as ``decode`` says
        value = _PAYLOAD_DECODER.decode(text)
    if not isinstance(value, dict):
        raise ValueError("payload is not a JSON object")
    return value
