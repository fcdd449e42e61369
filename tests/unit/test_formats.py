"""The stored formats of docs/FORMAT.md: envelope, signed bytes, leaf bytes, checkpoint notes."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys.signer import BadSignature, Signer, verify
from proofs import envelope
from proofs.checkpoint import (
    MalformedCheckpoint,
    key_id,
    make_checkpoint,
    parse_checkpoint,
)

OID = UUID("12345678-1234-5678-1234-567812345678")
AT = "2026-11-27T08:00:00.000000+00:00"


def test_the_signed_bytes_are_exactly_as_documented() -> None:
    message = envelope.signed_bytes(OID, 3, "domain.records:CreditRecord.Corrected", "tax", AT,
                                    "tax-2026-1", b'{"reason":"typo"}')
    assert message == (
        b"credit-ledger/event/v1\n"
        b"12345678-1234-5678-1234-567812345678\n3\ndomain.records:CreditRecord.Corrected\n"
        b"tax\n2026-11-27T08:00:00.000000+00:00\ntax-2026-1\n"
        b'{"reason":"typo"}'
    )


def test_a_header_field_with_a_newline_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match="topic must not contain a newline"):
        envelope.signed_bytes(OID, 1, "a\nb", "tax", AT, "tax-2026-1", b"{}")


def test_an_envelope_round_trips_and_is_one_header_line_then_the_payload() -> None:
    signer = Signer("tax-2026-1", Ed25519PrivateKey.generate())
    payload = '{"summary":"欠税"}'.encode()
    message = envelope.signed_bytes(OID, 1, "t:T", "tax", AT, signer.kid, payload)
    state = envelope.encode("tax", AT, signer.kid, signer.sign(message), payload)
    header, _, rest = state.partition(b"\n")
    assert rest == payload
    assert header.startswith(b'{"v":1,"actor":"tax","at":"2026-11-27T08:00:00.000000+00:00",')
    sealed = envelope.decode(state)
    assert (sealed.actor, sealed.at, sealed.kid, sealed.payload) == ("tax", AT, "tax-2026-1",
                                                                     payload)
    verify(signer.public_key, sealed.signature, message)
    with pytest.raises(BadSignature):
        verify(signer.public_key, sealed.signature, message + b" ")
    # the header as written is matched, not parsed: the same header written otherwise (spaces,
    # another key order) is parsed as JSON, and both give the same envelope
    spaced = json.dumps(dict(reversed(json.loads(header).items()))).encode() + b"\n" + rest
    assert spaced != state and envelope.decode(spaced) == sealed


@pytest.mark.parametrize("state, reason", [
    (b"no header", "no envelope header line"),
    (b"{not json\n{}", "envelope header is not JSON"),
    (b'{"v":2}\n{}', "not a version 1 header"),
    (b'{"v":1,"actor":"tax","at":"x","kid":"k"}\n{}', "has no 'sig'"),
    (b'{"v":1,"actor":"tax","at":"x","kid":"k","sig":"AAAA"}\n{}', "has 3 bytes, not 64"),
])
def test_malformed_envelopes_say_what_is_wrong(state: bytes, reason: str) -> None:
    with pytest.raises(envelope.MalformedEnvelope, match=reason):
        envelope.decode(state)


def test_only_safe_names_go_into_a_header() -> None:
    with pytest.raises(ValueError, match="lower-case names"):
        envelope.encode('ta"x', AT, "tax-2026-1", bytes(64), b"{}")


def test_the_leaf_hash_is_rfc6962_over_the_documented_leaf_bytes() -> None:
    leaf = envelope.leaf_bytes(OID, 2, "t:T", b"state")
    assert leaf == b"credit-ledger/leaf/v1\n12345678-1234-5678-1234-567812345678\n2\nt:T\nstate"
    assert envelope.leaf_hash(OID, 2, "t:T", b"state") == hashlib.sha256(b"\x00" + leaf).digest()


def test_recorded_times_have_one_text_form() -> None:
    moment = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    assert envelope.format_instant(moment) == "2026-11-27T16:00:00.000000+00:00"
    with pytest.raises(ValueError, match="no timezone"):
        envelope.format_instant(datetime(2026, 11, 27))


def test_payloads_decode_with_their_typed_values() -> None:
    payload = (b'{"d":{"_type_":"date_iso","_data_":"2020-01-02"},'
               b'"t":{"_type_":"datetime_iso","_data_":"2020-01-02T00:00:00+00:00"},'
               b'"u":{"_type_":"uuid_hex","_data_":"12345678123456781234567812345678"}}')
    value = envelope.decode_payload(payload)
    assert value["d"].isoformat() == "2020-01-02"
    assert value["t"].tzinfo is not None
    assert value["u"] == OID


@pytest.mark.parametrize("payload", [
    b'{"a":1}', b' {"a":1}', b'{"a":1} ', b'{"a":1}\n', b'{"a":1}{"b":2}', b'{"a":1} x',
    b'{"a":', b'', b' ', b'[1]', b'"text"', b'1', b'{"a":"\\u00"}', b'{"a":NaN}',
    b'{"a":1,"a":2}', b'{"d":{"_type_":"date_iso","_data_":"2020-01-02"}} ',
    b'{"d":{"_type_":"nothing","_data_":"x"}}', "{\"名\":\"值\"}".encode(),
])
def test_a_payload_decodes_as_json_decodes_it(payload: bytes) -> None:
    """decode_payload scans a payload as written directly; whatever the bytes, it gives what
    the JSON decoder's ``decode`` gives, or fails as it fails."""
    import json
    try:
        expected: object = json.JSONDecoder(object_hook=envelope._decode_typed).decode(
            payload.decode("utf-8"))
    except ValueError as exc:
        expected = exc
    if isinstance(expected, dict):
        assert envelope.decode_payload(payload) == expected
    else:
        with pytest.raises(ValueError) as raised:
            envelope.decode_payload(payload)
        if isinstance(expected, ValueError):
            assert str(raised.value) == str(expected)


def test_a_checkpoint_note_is_a_c2sp_signed_note() -> None:
    signer = Signer("platform-2026-1", Ed25519PrivateKey.generate())
    issued = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    cp = make_checkpoint("credit-ledger.linan/log", 42, bytes(range(32)), issued,
                         bytes(range(32, 64)), signer.kid, signer.public_key, signer.sign)
    root = base64.b64encode(bytes(range(32))).decode()
    chains = base64.b64encode(bytes(range(32, 64))).decode()
    assert cp.body == (f"credit-ledger.linan/log\n42\n{root}\n"
                       f"time 2026-11-27T00:00:00.000000+00:00\nchains {chains}\n")
    assert cp.note.startswith(cp.body + "\n\u2014 platform-2026-1 ")
    parsed = parse_checkpoint(cp.note)
    assert parsed == cp
    expected_id = hashlib.sha256(b"platform-2026-1\n\x01" + signer.public_key).digest()[:4]
    assert parsed.key_id == key_id("platform-2026-1", signer.public_key) == expected_id
    verify(signer.public_key, parsed.signature, parsed.body.encode())


@pytest.mark.parametrize("note, reason", [
    ("origin\n1\nroot\n", "no blank line"),
    ("origin\n01\nAAAA\ntime x\nchains x\n\n\u2014 k AAAA\n", "not a decimal number"),
    ("origin\n1\n!!!!\ntime x\nchains x\n\n\u2014 k AAAA\n", "root hash is not base64"),
    ("origin\n1\nAAAA\ntime x\nchains x\n\n\u2014 k AAAA\n", "root hash has 3 bytes"),
    ("origin\n1\nAAAA\ntime x\n\n\u2014 k AAAA\n", "time and chains lines"),
    ("origin\n1\n" + "A" * 43 + "=\ntime 2026-11-27T00:00:00.000000+00:00\nchain x\n\n"
     "\u2014 k AAAA\n", "must be 'chains"),
    ("origin\n1\n" + "A" * 43 + "=\ntime 2026-11-27T00:00:00.000000+00:00\nchains AAAA\n\n"
     "\u2014 k AAAA\n", "chain map root has 3 bytes"),
])
def test_malformed_checkpoints_say_what_is_wrong(note: str, reason: str) -> None:
    with pytest.raises(MalformedCheckpoint, match=reason):
        parse_checkpoint(note)
