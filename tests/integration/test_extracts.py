"""Signed record extracts: issued from a real ledger on both databases, checked by the offline
verifier, and tampered with one way at a time, each failing with the right reason.

Tampering that keeps the outer signature valid is done by re-signing the altered payload with the
real platform key: the inner checks must hold even against the issuer.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain import clock
from domain.clock import CHINA_TIME
from keys.signer import Signer
from keys.store import KeyStore
from ledger.application import CreditLedger
from ledger.errors import LedgerError
from ledger.settings import Settings
from proofs import chain_map, envelope, jws
from proofs.checkpoint import make_checkpoint, parse_checkpoint
from proofs.failures import (
    ChainIncomplete,
    CheckpointInvalid,
    EventsOutOfOrder,
    ExtractSignatureInvalid,
    InauthenticData,
    InclusionInvalid,
    IssuerInvalid,
    KeyNotValid,
    MalformedInput,
    MembershipInvalid,
    RegistryInvalid,
    SignatureInvalid,
    StateMismatch,
    VerificationFailure,
)
from proofs.verify_extract import verify_extract
from tests.conftest import ENTERPRISE, PERSON, at
from workflows.extracts import Extract, ExtractIssuer
from workflows.policy_files import bundled_policies
from workflows.services import CreditServices

Payload = dict[str, Any]


@pytest.fixture
def settings(scenario: Settings) -> Settings:
    """The shared `ledger` fixture, opened on a copy of the scenario ledger."""
    return scenario


@pytest.fixture
def app(ledger: CreditLedger) -> CreditLedger:
    return ledger


def platform_key(app: CreditLedger) -> bytes:
    return app.registry.keys["platform-2020-1"].public_key


def issue(app: CreditLedger, subject: str = ENTERPRISE.key, as_of: str | None = None) -> Extract:
    with clock.frozen_at(at("2021-09-01T00:00:00")):
        return ExtractIssuer(app).issue(subject, at(as_of) if as_of else None)


def payload_of(document: dict[str, str]) -> Payload:
    return dict(json.loads(jws.unb64url(document["payload"], "payload")))


def resigned(document: dict[str, str], keystore: KeyStore, change: Callable[[Payload], None],
             alg: str = "Ed25519") -> dict[str, str]:
    """The extract with its payload changed and signed again by the platform key."""
    payload = payload_of(document)
    change(payload)
    header = json.loads(jws.unb64url(document["protected"], "header"))
    signer = keystore.signer(header["kid"])
    header["alg"] = alg
    return jws.sign(json.dumps(payload).encode(), header, signer.sign)


def fails(document: dict[str, str], trusted: bytes, kind: type[VerificationFailure],
          fact: str = "") -> VerificationFailure:
    """The extract fails exactly the check ``kind`` names; ``fact`` is what the failure must
    name (a key, a position, a field), not its wording."""
    with pytest.raises(VerificationFailure) as caught:
        verify_extract(copy.deepcopy(document), trusted)
    failure = caught.value
    assert type(failure) is kind, f"{failure.check}: {failure}"
    assert failure.check == kind.check
    assert failure.malformed is issubclass(kind, MalformedInput)
    assert isinstance(failure, MalformedInput) != isinstance(failure, InauthenticData)
    assert fact in str(failure), str(failure)
    return failure


def subject_events(payload: Payload) -> list[dict[str, Any]]:
    return [e for e in payload["events"]
            if e["topic"].rsplit(":", 1)[1].split(".")[0] not in ("Authority", "PolicyVersion")]


def state_bytes(event: dict[str, Any]) -> bytes:
    return base64.b64decode(event["state"])


# -- valid extracts ---------------------------------------------------------------------------


def test_an_extract_verifies_and_carries_the_subjects_whole_signed_history(
        app: CreditLedger) -> None:
    issued = issue(app)
    result = verify_extract(issued.document, platform_key(app))
    payload = issued.payload
    assert result.subject == ENTERPRISE.key
    facts = app.facts_about(ENTERPRISE.key)
    assert len(facts) > 10
    assert [e["notification_id"] for e in subject_events(payload)] == [
        f.notification_id for f in facts]
    # five authorities registered, the tax key rotated, the old one revoked
    assert result.counts == {"subject": len(facts), "registry": 7,
                             "policies": len(bundled_policies())}
    # as stored: each event's bytes are the stored state, so each department's signature checks
    stored = {f.notification_id: f for f in facts}
    for event in subject_events(payload):
        assert envelope.decode(state_bytes(event)).kid == stored[event["notification_id"]].kid
    assert payload["state"] == CreditServices(app).state(
        ENTERPRISE.key, date(2021, 9, 1), at("2021-09-01T00:00:00"))
    assert result.state["grade"]["grade"] is not None
    checkpoint = parse_checkpoint(payload["checkpoint"])
    assert checkpoint.tree_size == app.event_count()
    assert result.summary()["valid"] is True


def test_an_extract_as_of_a_past_day_shows_that_day_as_the_ledger_knew_it(
        app: CreditLedger) -> None:
    issued = issue(app, as_of="2020-06-30T16:00:00")  # 2020-07-01 00:00 China time
    result = verify_extract(issued.document, platform_key(app))
    expected = CreditServices(app).state(ENTERPRISE.key, date(2020, 7, 1),
                                         at("2020-06-30T16:00:00"))
    assert result.state == expected
    assert len(expected["records"]) == 12  # March to June, three a month
    assert result.as_of.astimezone(CHINA_TIME).date() == date(2020, 7, 1)


def test_an_extract_of_a_subject_without_events_proves_there_are_none(app: CreditLedger) -> None:
    nobody = "uscc:91330185MA2B0000X5"
    issued = issue(app, nobody)
    result = verify_extract(issued.document, platform_key(app))
    assert result.counts["subject"] == 0
    assert result.state["absent"] is True and "records" not in result.state
    proof = next(p for p in issued.payload["chains"] if p["chain"] == nobody)
    assert all(base64.b64decode(h) != chain_map.key_hash(nobody) for h, _, _ in proof["bucket"])


def test_the_issuer_refuses_a_time_in_the_future(app: CreditLedger) -> None:
    with clock.frozen_at(at("2021-09-01T00:00:00")), pytest.raises(LedgerError, match="future"):
        ExtractIssuer(app).issue(ENTERPRISE.key, at("2021-09-02T00:00:00"))


def test_the_eddsa_algorithm_name_is_accepted(app: CreditLedger, keystore: KeyStore) -> None:
    issued = issue(app)
    document = resigned(issued.document, keystore, lambda p: None, alg="EdDSA")
    assert verify_extract(document, platform_key(app)).number == issued.number


# -- tampering, each caught by the check it breaks ---------------------------------------------


def test_a_byte_flipped_in_an_event(app: CreditLedger, keystore: KeyStore) -> None:
    def flip(payload: Payload) -> None:
        event = subject_events(payload)[3]
        state = bytearray(state_bytes(event))
        where = bytes(state).index(b'"amount":"') + len(b'"amount":"')
        state[where] = ord("9") if state[where] != ord("9") else ord("8")
        event["state"] = base64.b64encode(bytes(state)).decode()

    document = resigned(issue(app).document, keystore, flip)
    fails(document, platform_key(app), SignatureInvalid, "tax-2020-1")


def test_an_event_dropped(app: CreditLedger, keystore: KeyStore) -> None:
    def drop(payload: Payload) -> None:
        payload["events"].remove(subject_events(payload)[-2])

    issued = issue(app)
    n = len(subject_events(issued.payload))
    document = resigned(issued.document, keystore, drop)
    fails(document, platform_key(app), ChainIncomplete,
          f"the map holds {n} events of chain {ENTERPRISE.key!r}, the extract {n - 1}")


def test_the_last_event_dropped(app: CreditLedger, keystore: KeyStore) -> None:
    def drop(payload: Payload) -> None:
        payload["events"].remove(subject_events(payload)[-1])

    document = resigned(issue(app).document, keystore, drop)
    fails(document, platform_key(app), ChainIncomplete, "the map holds")


def test_an_event_dropped_and_the_map_entry_edited_to_match(app: CreditLedger,
                                                           keystore: KeyStore) -> None:
    def drop(payload: Payload) -> None:
        dropped = subject_events(payload)[-1]
        payload["events"].remove(dropped)
        proof = next(p for p in payload["chains"] if p["chain"] == ENTERPRISE.key)
        hkey = base64.b64encode(chain_map.key_hash(ENTERPRISE.key)).decode()
        leaves = [envelope.leaf_hash(e["originator_id"], e["version"], e["topic"],
                                     state_bytes(e)) for e in subject_events(payload)]
        length, head = chain_map.chain_head(leaves)
        proof["bucket"] = [[h, length, base64.b64encode(head).decode()] if h == hkey
                           else [h, n, x] for h, n, x in proof["bucket"]]

    document = resigned(issue(app).document, keystore, drop)
    fails(document, platform_key(app), ChainIncomplete,
          "does not lead to the checkpoint's chain root")


def test_events_reordered(app: CreditLedger, keystore: KeyStore) -> None:
    def swap(payload: Payload) -> None:
        events = payload["events"]
        a, b = (events.index(e) for e in subject_events(payload)[1:3])
        events[a], events[b] = events[b], events[a]

    document = resigned(issue(app).document, keystore, swap)
    fails(document, platform_key(app), EventsOutOfOrder, "not in log order")


def test_events_reordered_with_their_positions(app: CreditLedger, keystore: KeyStore) -> None:
    """Swapping two events' places in the log (positions and proofs travel with the list)."""
    def swap(payload: Payload) -> None:
        a, b = subject_events(payload)[1:3]
        for name in ("state", "originator_id", "version", "topic"):
            a[name], b[name] = b[name], a[name]

    document = resigned(issue(app).document, keystore, swap)
    fails(document, platform_key(app), InclusionInvalid)


def test_a_key_swapped_in_the_registry(app: CreditLedger, keystore: KeyStore) -> None:
    impostor = Signer("tax-2020-1", Ed25519PrivateKey.generate())

    def swap(payload: Payload) -> None:
        for event in payload["events"]:
            state = state_bytes(event)
            if event["topic"].endswith("Authority.Registered") and b'"code":"tax"' in state:
                sealed = envelope.decode(state)
                body = json.loads(sealed.payload)
                body["public_key"] = base64.b64encode(impostor.public_key).decode()
                new = json.dumps(body, separators=(",", ":")).encode()
                event["state"] = base64.b64encode(envelope.encode(
                    sealed.actor, sealed.at, sealed.kid, sealed.signature, new)).decode()

    document = resigned(issue(app).document, keystore, swap)
    fails(document, platform_key(app), RegistryInvalid, "platform")


def test_an_event_signed_after_its_keys_revocation(app: CreditLedger) -> None:
    # the 2021 tax key is found compromised from before the records it signed on 2021-08-01
    with clock.frozen_at(at("2021-08-20T00:00:00")):
        app.revoke_key("tax-2021-1", reason="private key compromised",
                       revoked_at=at("2021-07-31T00:00:00"))
    document = issue(app).document
    reason = str(fails(document, platform_key(app), KeyNotValid, "tax-2021-1"))
    assert "2021-07-31" in reason


def test_a_forged_checkpoint(app: CreditLedger, keystore: KeyStore) -> None:
    def forge(payload: Payload) -> None:
        real = parse_checkpoint(payload["checkpoint"])
        forger = Signer(real.key_name, Ed25519PrivateKey.generate())
        payload["checkpoint"] = make_checkpoint(
            real.origin, real.tree_size, real.root_hash, real.issued_at, bytes(32),
            real.key_name, forger.public_key, forger.sign).note

    document = resigned(issue(app).document, keystore, forge)
    fails(document, platform_key(app), CheckpointInvalid, "platform-2020-1")


def test_a_checkpoint_line_edited_without_resigning_it(app: CreditLedger,
                                                       keystore: KeyStore) -> None:
    def edit(payload: Payload) -> None:
        real = parse_checkpoint(payload["checkpoint"])
        payload["checkpoint"] = payload["checkpoint"].replace(
            f"\n{real.tree_size}\n", f"\n{real.tree_size + 1}\n")

    document = resigned(issue(app).document, keystore, edit)
    fails(document, platform_key(app), CheckpointInvalid)


def test_an_inclusion_proof_for_the_wrong_index(app: CreditLedger, keystore: KeyStore) -> None:
    def misplace(payload: Payload) -> None:
        a, b = subject_events(payload)[2:4]
        a["proof"] = b["proof"]

    document = resigned(issue(app).document, keystore, misplace)
    fails(document, platform_key(app), InclusionInvalid)


def test_the_derived_state_altered(app: CreditLedger, keystore: KeyStore) -> None:
    issued = issue(app)
    real = issued.payload["state"]["grade"]["grade"]
    claimed = "A" if real != "A" else "D"

    def upgrade(payload: Payload) -> None:
        payload["state"]["grade"]["grade"] = claimed

    document = resigned(issued.document, keystore, upgrade)
    fails(document, platform_key(app), StateMismatch,
          f"state.grade.grade: the extract says {claimed!r}, the events give {real!r}")


def test_the_as_of_date_altered_to_later(app: CreditLedger, keystore: KeyStore) -> None:
    def later(payload: Payload) -> None:
        moment = envelope.parse_instant(payload["as_of"]) + timedelta(days=30)
        payload["as_of"] = envelope.format_instant(moment)

    document = resigned(issue(app, as_of="2021-08-01T00:00:00").document, keystore, later)
    fails(document, platform_key(app), CheckpointInvalid, "before the as-of time")


def test_the_as_of_date_altered_to_earlier(app: CreditLedger, keystore: KeyStore) -> None:
    def earlier(payload: Payload) -> None:
        payload["as_of"] = "2020-05-01T00:00:00.000000+00:00"

    document = resigned(issue(app).document, keystore, earlier)
    fails(document, platform_key(app), StateMismatch, "state.as_of")


def test_the_outer_signature_by_a_key_that_is_not_the_trusted_one(app: CreditLedger) -> None:
    issued = issue(app)
    stranger = Ed25519PrivateKey.generate()
    document = jws.sign(json.dumps(issued.payload).encode(),
                        {"alg": "Ed25519", "kid": "platform-2020-1"}, stranger.sign)
    fails(document, platform_key(app), ExtractSignatureInvalid,
          "does not verify with the trusted platform key")


def test_a_change_without_resigning_breaks_the_outer_signature(app: CreditLedger) -> None:
    document = dict(issue(app).document)
    payload = payload_of(document)
    payload["state"]["grade"]["grade"] = "A"
    document["payload"] = jws.b64url(json.dumps(payload).encode())
    fails(document, platform_key(app), ExtractSignatureInvalid, "does not verify")


def test_trusting_another_platform_key(app: CreditLedger) -> None:
    other = Signer("x", Ed25519PrivateKey.generate())
    fails(issue(app).document, other.public_key, ExtractSignatureInvalid,
          "does not verify with the trusted platform key")


def test_a_header_naming_a_key_that_is_not_the_platforms(app: CreditLedger,
                                                         keystore: KeyStore) -> None:
    issued = issue(app)
    platform = keystore.signer("platform-2020-1")
    document = jws.sign(json.dumps(issued.payload).encode(),
                        {"alg": "Ed25519", "kid": "tax-2021-1"}, platform.sign)
    fails(document, platform_key(app), IssuerInvalid, "tax-2021-1")


def test_another_subjects_event_slipped_in(app: CreditLedger, keystore: KeyStore) -> None:
    other = issue(app, PERSON.key).payload

    def slip(payload: Payload) -> None:
        foreign = subject_events(other)[0]
        payload["events"].append(foreign)
        payload["events"].sort(key=lambda e: e["position"])

    document = resigned(issue(app).document, keystore, slip)
    fails(document, platform_key(app), MembershipInvalid, f"is about {PERSON.key!r}")


def test_the_policies_chain_cut_short(app: CreditLedger, keystore: KeyStore) -> None:
    def cut(payload: Payload) -> None:
        last = [e for e in payload["events"] if "PolicyVersion" in e["topic"]][-1]
        payload["events"].remove(last)

    document = resigned(issue(app).document, keystore, cut)
    fails(document, platform_key(app), ChainIncomplete, "'~PolicyVersion'")


# -- absence is a statement, not a grade --------------------------------------------------------


def test_an_extract_of_a_subject_the_ledger_never_saw_states_that_and_carries_no_grade(
        app: CreditLedger, keystore: KeyStore) -> None:
    stranger = "uscc:91330185MA00000000"
    assert app.facts_about(stranger) == []
    issued = issue(app, stranger)
    state = issued.payload["state"]
    assert state["absent"] is True and "grade" not in state
    assert state["statement"] == f"no event about {stranger} up to checkpoint " \
                                 f"{parse_checkpoint(issued.payload['checkpoint']).tree_size}"
    result = verify_extract(issued.document, platform_key(app))
    assert result.summary()["absent"] is True and "grade" not in result.summary()
    # a grade slipped into an absence, re-signed, is caught
    document = resigned(issued.document, keystore, lambda p: p["state"].update(
        {"grade": {"grade": "A", "points": 100}}))
    fails(document, platform_key(app), StateMismatch, "state.grade")
    # and so is an absence claimed for a subject the ledger holds events about
    lie = resigned(issue(app).document, keystore, lambda p: p.update(
        {"state": {**state, "subject": ENTERPRISE.key}}))
    fails(lie, platform_key(app), StateMismatch)


def test_an_extract_as_of_before_the_ledger_existed_is_refused(
        app: CreditLedger, keystore: KeyStore) -> None:
    with clock.frozen_at(at("2021-09-01T00:00:00")), pytest.raises(LedgerError,
                                                                     match="held nothing"):
        ExtractIssuer(app).issue(ENTERPRISE.key, at("2019-12-31T00:00:00"))
    early = resigned(issue(app).document, keystore,
                     lambda p: p.update({"as_of": "2019-12-31T00:00:00.000000+00:00"}))
    fails(early, platform_key(app), StateMismatch, "precedes the ledger's first event")
