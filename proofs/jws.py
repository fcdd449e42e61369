"""JWS in the flattened JSON serialisation (RFC 7515 §7.2.2) with Ed25519 (RFC 8037, RFC 9864).

Extracts are written with ``"alg": "Ed25519"`` (the fully specified name); ``"EdDSA"`` is accepted
when reading. Standard library only, apart from the signature check the caller does.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

WRITTEN_ALGORITHM = "Ed25519"
ACCEPTED_ALGORITHMS = ("Ed25519", "EdDSA")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class JWSError(ValueError):
    """A document that is not a flattened JWS this code accepts; the message says why."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str, what: str) -> bytes:
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise JWSError(f"{what} is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise JWSError(f"{what} is not base64url") from None


@dataclass(frozen=True)
class SignedDocument:
    header: dict[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes


def sign(payload: bytes, header: Mapping[str, Any], signer: Callable[[bytes], bytes]
         ) -> dict[str, str]:
    """The flattened JWS of ``payload`` with the protected ``header``."""
    protected = b64url(json.dumps(dict(header), separators=(",", ":"), sort_keys=True)
                       .encode("utf-8"))
    body = b64url(payload)
    signature = signer(f"{protected}.{body}".encode("ascii"))
    return {"payload": body, "protected": protected, "signature": b64url(signature)}


def parse(document: Any) -> SignedDocument:
    """Split a flattened JWS into its parts; check the header asks for Ed25519."""
    if not isinstance(document, dict):
        raise JWSError("the file is not a JSON object")
    if "signatures" in document:
        raise JWSError("the general JWS serialisation is not used: expected one signature")
    for name in ("payload", "protected", "signature"):
        if not isinstance(document.get(name), str):
            raise JWSError(f"the JWS has no {name!r} member")
    protected_bytes = unb64url(document["protected"], "the protected header")
    try:
        header = json.loads(protected_bytes)
    except ValueError:
        raise JWSError("the protected header is not JSON") from None
    if not isinstance(header, dict):
        raise JWSError("the protected header is not a JSON object")
    if header.get("alg") not in ACCEPTED_ALGORITHMS:
        raise JWSError(f"algorithm {header.get('alg')!r} is not Ed25519 (or EdDSA)")
    if "crit" in header:
        raise JWSError("the protected header has critical extensions this verifier does not know")
    payload = unb64url(document["payload"], "the payload")
    signature = unb64url(document["signature"], "the signature")
    signing_input = f"{document['protected']}.{document['payload']}".encode("ascii")
    return SignedDocument(header, payload, signing_input, signature)
