"""RFC 3161 timestamps of checkpoints: a timestamping authority (TSA) signs, at a time of its own
clock, the SHA-256 of a checkpoint's note body (docs/FORMAT.md §13). A checkpoint's ``time`` line
is the platform's word; the token is the TSA's.

Checking a token needs ``rfc3161-client`` (CMS signatures are beyond ``cryptography``); it is
imported only when a token is checked, so the one-file verifier still runs without it unless
``--tsa-cert`` is given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from proofs.failures import TimestampInvalid, TimestampUnreadable

__all__ = ["CheckedTimestamp", "TimestampInvalid", "TimestampUnreadable", "check_timestamp"]


@dataclass(frozen=True)
class CheckedTimestamp:
    gen_time: datetime  # UTC, by the TSA's clock
    serial: int
    tsa: str  # the TSA certificate's subject


def _library() -> Any:
    try:
        import rfc3161_client
    except ImportError:  # pragma: no cover - the verifier without its optional dependency
        raise SystemExit("checking a timestamp needs the rfc3161-client package "
                         "(python3 -m pip install rfc3161-client)") from None
    return rfc3161_client


def check_timestamp(token: bytes, message: bytes, tsa_certificate: x509.Certificate,
                    roots: list[x509.Certificate]) -> CheckedTimestamp:
    """The token's time if it is a granted RFC 3161 response over ``message``, signed by the
    TSA certificate, which chains to ``roots``; else TimestampInvalid saying why."""
    library = _library()
    try:
        response = library.decode_timestamp_response(token)
    except ValueError as exc:
        raise TimestampUnreadable(f"the timestamp is not an RFC 3161 response: {exc}") from None
    builder = library.VerifierBuilder(tsa_certificate=tsa_certificate, roots=list(roots))
    try:
        builder.build().verify_message(response, message)
    except library.VerificationError as exc:
        raise TimestampInvalid(f"the timestamp does not hold for this checkpoint with the "
                               f"trusted TSA: {exc}") from None
    gen_time = response.tst_info.gen_time
    if gen_time.tzinfo is None:
        gen_time = gen_time.replace(tzinfo=UTC)
    return CheckedTimestamp(gen_time, int(response.tst_info.serial_number),
                            tsa_certificate.subject.rfc4514_string())
