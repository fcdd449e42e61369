"""Asking a timestamping authority (RFC 3161) to timestamp the platform's checkpoints, and
keeping the tokens (``ledger_timestamps``) beside the checkpoints they are for.

The TSA is configured in ``tsa.json`` in the keys folder: ``{"url": "http://…",
"certificate": "tsa.pem", "roots": ["ca.pem"]}`` (paths beside the file); each token received is
checked against them before it is kept."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from rfc3161_client import TimestampRequestBuilder
from sqlalchemy import delete, insert, inspect, select

from ledger import tables
from ledger.application import CreditLedger
from ledger.errors import LedgerError
from proofs.cosignature import split_note
from proofs.timestamps import CheckedTimestamp, check_timestamp

CONFIG_NAME = "tsa.json"


@dataclass(frozen=True)
class TsaConfig:
    url: str
    certificate: x509.Certificate
    roots: list[x509.Certificate]


def read_config(ledger: CreditLedger) -> TsaConfig | None:
    path = ledger.settings.keys_dir / CONFIG_NAME
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
        return TsaConfig(str(data["url"]), _certificate(path.parent / data["certificate"]),
                         [_certificate(path.parent / r) for r in data.get("roots", [])])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LedgerError(f"{path}: not a TSA configuration {{url, certificate, roots}}: "
                          f"{exc}") from None


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def request_token(url: str, message: bytes, timeout: float = 10.0) -> bytes:
    """An RFC 3161 response for ``message`` (SHA-256, a nonce, the TSA's certificate asked for)."""
    query = (TimestampRequestBuilder().data(message).nonce(nonce=True)
             .cert_request(cert_request=True).build())
    request = urllib.request.Request(url, data=query.as_bytes(), method="POST",
                                     headers={"Content-Type": "application/timestamp-query"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body: bytes = answer.read()
            return body
    except (urllib.error.URLError, OSError) as exc:
        raise LedgerError(f"the TSA at {url} cannot be reached: "
                          f"{getattr(exc, 'reason', exc)}") from None


def timestamp_of(ledger: CreditLedger, note: str) -> bytes | None:
    """The token kept for the checkpoint ``note``, if any."""
    c, t = tables.checkpoints, tables.timestamps
    with ledger.engine.connect() as conn:
        if not inspect(conn).has_table(t.name):
            return None
        token = conn.execute(select(t.c.token).join(c, c.c.seq == t.c.seq)
                             .where(c.c.note == note)).scalar()
    return None if token is None else bytes(token)


def timestamp(ledger: CreditLedger, config: TsaConfig, note: str) -> CheckedTimestamp:
    """Ask the TSA for a token over the checkpoint's body, check it, and keep it."""
    body = split_note(note)[0].encode("utf-8")
    token = request_token(config.url, body)
    checked = check_timestamp(token, body, config.certificate, config.roots)
    c, t = tables.checkpoints, tables.timestamps
    t.create(ledger.engine, checkfirst=True)
    with ledger.engine.begin() as conn:
        seq = conn.execute(select(c.c.seq).where(c.c.note == note)).scalar()
        if seq is None:
            raise LedgerError("no such checkpoint to timestamp")
        conn.execute(delete(t).where(t.c.seq == seq))
        conn.execute(insert(t).values(seq=seq, gen_time=checked.gen_time.replace(tzinfo=None),
                                      token=token))
    return checked


