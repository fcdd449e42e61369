"""The signing mapper: every domain event leaves the application as a signed envelope.

Signing happens here, below the domain: aggregates stay free of keys and I/O. The envelope format
and the signed bytes are specified in docs/FORMAT.md and implemented in ``proofs.envelope``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, cast
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
    Transcoding,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic, resolve_topic

from domain import events
from domain.state import kind_of
from keys.signer import Signer
from proofs import envelope

# an event's payload, so that its leaf bytes (FORMAT.md §3: the payload inside the envelope,
# after the id, version and topic) fit the uint16 length of a tlog-tiles entry bundle (§11)
MAX_PAYLOAD = 60_000


class UnsignableEvent(Exception):
    """An event the ledger cannot sign (it names no actor, or its time has no timezone)."""


class SignerSource(Protocol):
    """Finds the key an event must be signed with, and learns from each signed event."""

    def signer_for(self, event: DomainEventProtocol[Any], actor: str, at: datetime) -> Signer: ...

    def signed(self, event: DomainEventProtocol[Any], topic: str) -> None: ...


@dataclass(frozen=True)
class _Unsigned:
    originator_id: UUID
    originator_version: int
    topic: str
    actor: str
    at: str
    signer: Signer
    payload: bytes
    message: bytes


_PARALLEL_FROM = 256  # below this, starting threads costs more than it saves
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _signing_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                                       thread_name_prefix="credit-sign")
        return _pool


def _sign_chunk(chunk: Sequence[tuple[Signer, bytes]]) -> list[bytes]:
    return [signer.sign(message) for signer, message in chunk]


def sign_later(jobs: Sequence[tuple[Signer, bytes]]) -> Callable[[], list[bytes]]:
    """Signatures for (signer, message) pairs, in order: a large batch started on every core
    now, the call returned waiting for them (meanwhile the caller's thread may go on)."""
    workers = os.cpu_count() or 1
    if len(jobs) < _PARALLEL_FROM or workers == 1:
        signatures = _sign_chunk(jobs)
        return lambda: signatures
    size = -(-len(jobs) // workers)
    pool = _signing_pool()
    parts = [pool.submit(_sign_chunk, jobs[i:i + size]) for i in range(0, len(jobs), size)]
    return lambda: [sig for part in parts for sig in part.result()]


class DateAsISO(Transcoding):
    """Calendar dates (decision dates) as ``YYYY-MM-DD``."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


def register_payload_types(transcoder: JSONTranscoder) -> None:
    """The types a payload holds beyond JSON's (FORMAT.md §2), and how it is written."""
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()):
        transcoder.register(transcoding)
    # Signed payloads are strict JSON: NaN and Infinity are refused, never written (a court's
    # parser would reject the extract)
    transcoder.encoder = json.JSONEncoder(default=transcoder.encoder.default,
                                          separators=(",", ":"), ensure_ascii=False,
                                          allow_nan=False)


def payload_transcoder() -> JSONTranscoder:
    """The ledger's transcoder, for a mapper outside the application (a presigning process)."""
    transcoder = JSONTranscoder()
    register_payload_types(transcoder)
    return transcoder


class SigningMapper(Mapper[UUID]):
    """Maps domain events to signed envelopes and back."""

    def __init__(self, transcoder: Transcoder, signers: SignerSource | None = None) -> None:
        super().__init__(transcoder=transcoder)
        self.signers = signers

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        return self.to_stored_events([domain_event])[0]

    def to_stored_events(
        self, domain_events: Sequence[DomainEventProtocol[UUID]],
        signers: SignerSource | None = None,
    ) -> list[StoredEvent]:
        """Sign a batch of events in order, with the keys of ``signers`` (by default the
        mapper's own, set for each save).

        Keys are chosen one event at a time (a key event changes the keys of the events after
        it); the signatures themselves are then computed on all cores, since Ed25519 signing in
        pyca/cryptography releases the GIL.
        """
        return self.start_signing(domain_events, signers)()

    def start_signing(
        self, domain_events: Sequence[DomainEventProtocol[UUID]],
        signers: SignerSource | None = None,
    ) -> Callable[[], list[StoredEvent]]:
        """As ``to_stored_events``, the signatures started on the signing threads; the call
        returned waits for them and makes the stored events."""
        source = signers if signers is not None else self.signers
        unsigned = [self._unsigned(event, source) for event in domain_events]
        signatures = sign_later([(u.signer, u.message) for u in unsigned])

        def stored_events() -> list[StoredEvent]:
            return [
                StoredEvent(
                    originator_id=u.originator_id,
                    originator_version=u.originator_version,
                    topic=u.topic,
                    state=envelope.encode(u.actor, u.at, u.signer.kid, signature, u.payload),
                )
                for u, signature in zip(unsigned, signatures(), strict=True)
            ]
        return stored_events

    def _unsigned(self, domain_event: DomainEventProtocol[UUID],
                  signers: SignerSource | None) -> _Unsigned:
        topic = get_topic(domain_event.__class__)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        actor = state.pop("actor", None)
        if not isinstance(actor, str) or not actor:
            raise UnsignableEvent(f"event {topic} names no actor, so no one can sign it")
        recorded_at = state.pop("timestamp")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        try:
            payload = self.transcoder.encode(state)
        except ValueError as exc:  # NaN or Infinity: not JSON a verifier could read
            raise UnsignableEvent(f"event {topic}: {exc}") from exc
        if len(payload) > MAX_PAYLOAD:
            raise UnsignableEvent(f"event {topic} is {len(payload)} bytes; at most {MAX_PAYLOAD} "
                                  "(an entry of the log's tiles holds 65,535)")
        try:
            at = envelope.format_instant(recorded_at)
        except ValueError as exc:
            raise UnsignableEvent(f"event {topic}: {exc}") from exc
        if signers is None:
            raise UnsignableEvent("the mapper has no key source")
        signer = signers.signer_for(domain_event, actor, recorded_at)
        signers.signed(domain_event, topic)
        message = envelope.signed_bytes(
            originator_id, originator_version, topic, actor, at, signer.kid, payload
        )
        return _Unsigned(originator_id, originator_version, topic, actor, at, signer, payload,
                         message)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        try:
            sealed = envelope.decode(stored_event.state)
            event_state: dict[str, Any] = self.transcoder.decode(sealed.payload)
            event_state["actor"] = sealed.actor
            event_state["timestamp"] = sealed.recorded_at
        except Exception as exc:
            raise MapperDeserialisationError(
                f"stored event {stored_event.originator_id} v{stored_event.originator_version} "
                f"({stored_event.topic}) is not a readable signed envelope: {exc}"
            ) from exc
        originator_id = stored_event.originator_id
        event_state["originator_id"] = (
            originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
        )
        event_state["originator_version"] = stored_event.originator_version
        try:
            events.upcast(kind_of(stored_event.topic), event_state)
        except ValueError as exc:
            raise MapperDeserialisationError(str(exc)) from exc
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", event_state)
        return cast(DomainEventProtocol[UUID], domain_event)
