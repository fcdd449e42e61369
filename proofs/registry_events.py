"""Reading key facts out of stored key events (the Authority aggregate's events).

Standard library only: the same code serves the application, ``credit verify`` and offline verifiers.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from keys.registry import (
    AuthorityRegisteredFact,
    KeyRevokedFact,
    KeyRotatedFact,
    RegistryFact,
)

REGISTERED_TOPIC = "domain.authorities:Authority.Registered"
ROTATED_TOPIC = "domain.authorities:Authority.KeyRotated"
REVOKED_TOPIC = "domain.authorities:Authority.KeyRevoked"
REGISTRY_TOPICS = (REGISTERED_TOPIC, ROTATED_TOPIC, REVOKED_TOPIC)


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{name} is not a UTC time")
    return value


def _optional_time(value: Any, name: str) -> datetime | None:
    return None if value is None else _time(value, name)


def _public_key(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("public_key is not base64 text")
    key = base64.b64decode(value, validate=True)
    if len(key) != 32:
        raise ValueError(f"public_key has {len(key)} bytes, not 32")
    return key


def registry_fact(
    topic: str, payload: Mapping[str, Any], code: str | None, position: int | None
) -> RegistryFact | None:
    """The key fact a stored event states, or None when the event is not a key event.

    ``code`` is the authority the aggregate belongs to (needed for rotations and revocations,
    whose payload does not repeat it); ``payload`` is the decoded payload or ``vars(event)``.
    Raises ValueError (with the field at fault) when a key event's payload is malformed.
    """
    if topic == REGISTERED_TOPIC:
        return AuthorityRegisteredFact(
            position=position,
            code=str(payload["code"]),
            kind=str(payload["kind"]),
            name_zh=str(payload["name_zh"]),
            name_en=str(payload["name_en"]),
            kid=str(payload["kid"]),
            public_key=_public_key(payload["public_key"]),
            valid_from=_time(payload["valid_from"], "valid_from"),
            expires_at=_optional_time(payload.get("expires_at"), "expires_at"),
        )
    if topic not in (ROTATED_TOPIC, REVOKED_TOPIC):
        return None
    if code is None:
        raise ValueError("a key event of an authority that was never registered")
    if topic == ROTATED_TOPIC:
        retires = payload.get("retires")
        return KeyRotatedFact(
            position=position,
            code=code,
            kid=str(payload["kid"]),
            public_key=_public_key(payload["public_key"]),
            valid_from=_time(payload["valid_from"], "valid_from"),
            expires_at=_optional_time(payload.get("expires_at"), "expires_at"),
            retires=None if retires is None else str(retires),
        )
    return KeyRevokedFact(
        position=position,
        code=code,
        kid=str(payload["kid"]),
        revoked_at=_time(payload["revoked_at"], "revoked_at"),
        reason=str(payload["reason"]),
    )
