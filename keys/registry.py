"""The key registry view: which key was valid for which authority, when.

It is rebuilt from the ledger's own key events (authority registered, key rotated, key revoked), each
signed by the platform, so "who could sign what, when" is itself verifiable history.

Standard library only: offline verifiers import this module as it is.

Validity of key ``K`` for an event at log position ``p`` recorded at time ``t`` (docs/FORMAT.md §4),
checked in this order, the first broken rule named:
1. ``K`` is in the registry;                       2. ``K`` belongs to the event's actor;
3. ``K`` was registered at or before ``p``;
4. ``K`` is not revoked for the event: revocation takes effect from ``revoked_at`` in time *and* for
   every event appended after the revocation, whatever time that event claims;
5. ``t`` is not before ``K``'s ``valid_from``;       6. ``t`` is before ``K``'s expiry, if it has one;
7. ``t`` is not after ``K`` was retired by rotation (the rotation event itself is still signed by it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

PLATFORM = "platform"


class KeyRegistryError(Exception):
    """Base of every key problem; the message is one sentence naming the key and the fact."""


class UnknownAuthority(KeyRegistryError):
    def __init__(self, code: str) -> None:
        super().__init__(f"authority {code!r} is not registered in the ledger")
        self.code = code


class UnknownKey(KeyRegistryError):
    def __init__(self, kid: str) -> None:
        super().__init__(f"key {kid!r} is not in the key registry")
        self.kid = kid


class KeyNotHeldByActor(KeyRegistryError):
    def __init__(self, kid: str, holder: str, actor: str) -> None:
        super().__init__(f"key {kid} belongs to {holder!r}, not to the event's actor {actor!r}")


class KeyRegisteredLater(KeyRegistryError):
    def __init__(self, kid: str, registered: int, position: int) -> None:
        super().__init__(
            f"key {kid} was registered at notification {registered}, after this event ({position})"
        )


class KeyNotYetValid(KeyRegistryError):
    def __init__(self, kid: str, valid_from: datetime, at: datetime) -> None:
        super().__init__(
            f"key {kid} is valid from {valid_from.isoformat()}, not at {at.isoformat()}"
        )


class KeyExpired(KeyRegistryError):
    def __init__(self, kid: str, expires_at: datetime, at: datetime) -> None:
        super().__init__(f"key {kid} expired at {expires_at.isoformat()}, before {at.isoformat()}")


class KeyRetired(KeyRegistryError):
    def __init__(self, kid: str, retired_at: datetime, at: datetime) -> None:
        super().__init__(
            f"key {kid} was retired by rotation at {retired_at.isoformat()}, before {at.isoformat()}"
        )


class KeyRevoked(KeyRegistryError):
    def __init__(self, kid: str, revoked_at: datetime, at: datetime | None) -> None:
        when = f"; the event is recorded at {at.isoformat()}" if at is not None else ""
        super().__init__(f"key {kid} was revoked at {revoked_at.isoformat()}{when}")
        self.kid = kid


class NoValidKey(KeyRegistryError):
    def __init__(self, actor: str, at: datetime, reasons: list[str]) -> None:
        detail = "; ".join(reasons) if reasons else "it has no keys"
        super().__init__(f"authority {actor!r} has no valid key at {at.isoformat()}: {detail}")


class RegistryConflict(KeyRegistryError):
    """A key event that contradicts the registry (a reused key id, an unknown authority)."""


@dataclass(frozen=True)
class AuthorityRegisteredFact:
    position: int | None
    code: str
    kind: str
    name_zh: str
    name_en: str
    kid: str
    public_key: bytes
    valid_from: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class KeyRotatedFact:
    position: int | None
    code: str
    kid: str
    public_key: bytes
    valid_from: datetime
    expires_at: datetime | None
    retires: str | None


@dataclass(frozen=True)
class KeyRevokedFact:
    position: int | None
    code: str
    kid: str
    revoked_at: datetime
    reason: str


RegistryFact = AuthorityRegisteredFact | KeyRotatedFact | KeyRevokedFact


@dataclass
class RegisteredKey:
    kid: str
    authority: str
    public_key: bytes
    valid_from: datetime
    expires_at: datetime | None
    registered_position: int | None
    retired_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_position: int | None = None
    revocation_reason: str | None = None

    def status_at(self, at: datetime) -> str:
        """One word for lists: active, pending, expired, retired or revoked."""
        if self.revoked_at is not None and at >= self.revoked_at:
            return "revoked"
        if at < self.valid_from:
            return "pending"
        if self.expires_at is not None and at >= self.expires_at:
            return "expired"
        if self.retired_at is not None and at > self.retired_at:
            return "retired"
        return "active"


@dataclass
class AuthorityEntry:
    code: str
    kind: str
    name_zh: str
    name_en: str
    registered_position: int | None
    kids: list[str] = field(default_factory=list)


class KeyRegistry:
    """Authorities and their keys, built by applying key facts in log order."""

    def __init__(self) -> None:
        self.authorities: dict[str, AuthorityEntry] = {}
        self.keys: dict[str, RegisteredKey] = {}

    def copy(self) -> KeyRegistry:
        """An independent copy, to preview facts that are not yet stored."""
        other = KeyRegistry()
        other.authorities = {
            c: AuthorityEntry(a.code, a.kind, a.name_zh, a.name_en, a.registered_position, list(a.kids))
            for c, a in self.authorities.items()
        }
        other.keys = {k: RegisteredKey(**vars(v)) for k, v in self.keys.items()}
        return other

    @property
    def is_empty(self) -> bool:
        return not self.authorities

    # -- applying facts -------------------------------------------------------------------------

    def apply(self, fact: RegistryFact) -> None:
        """Add one key fact; raise RegistryConflict if it contradicts what is known."""
        if isinstance(fact, AuthorityRegisteredFact):
            self._apply_registered(fact)
        elif isinstance(fact, KeyRotatedFact):
            self._apply_rotated(fact)
        else:
            self._apply_revoked(fact)

    def _apply_registered(self, fact: AuthorityRegisteredFact) -> None:
        if fact.code in self.authorities:
            raise RegistryConflict(f"authority {fact.code!r} is registered twice")
        if self.is_empty and fact.code != PLATFORM:
            raise RegistryConflict(
                f"the first key event must register the platform, not {fact.code!r}"
            )
        self.authorities[fact.code] = AuthorityEntry(
            fact.code, fact.kind, fact.name_zh, fact.name_en, fact.position
        )
        self._add_key(fact.code, fact.kid, fact.public_key, fact.valid_from, fact.expires_at,
                      fact.position)

    def _apply_rotated(self, fact: KeyRotatedFact) -> None:
        entry = self._authority(fact.code)
        if fact.retires is not None:
            old = self._key(fact.retires)
            if old.authority != entry.code:
                raise RegistryConflict(f"key {old.kid} does not belong to {entry.code!r}")
            old.retired_at = fact.valid_from
        self._add_key(fact.code, fact.kid, fact.public_key, fact.valid_from, fact.expires_at,
                      fact.position)

    def _apply_revoked(self, fact: KeyRevokedFact) -> None:
        key = self._key(fact.kid)
        if key.authority != fact.code:
            raise RegistryConflict(f"key {key.kid} does not belong to {fact.code!r}")
        if key.revoked_at is not None:
            raise RegistryConflict(f"key {key.kid} is revoked twice")
        key.revoked_at = fact.revoked_at
        key.revoked_position = fact.position
        key.revocation_reason = fact.reason

    def _add_key(self, code: str, kid: str, public_key: bytes, valid_from: datetime,
                 expires_at: datetime | None, position: int | None) -> None:
        if kid in self.keys:
            raise RegistryConflict(f"key id {kid} is registered twice")
        if len(public_key) != 32:
            raise RegistryConflict(f"key {kid} is not a 32-byte Ed25519 public key")
        self.keys[kid] = RegisteredKey(kid, code, public_key, valid_from, expires_at, position)
        self.authorities[code].kids.append(kid)

    def _authority(self, code: str) -> AuthorityEntry:
        try:
            return self.authorities[code]
        except KeyError:
            raise UnknownAuthority(code) from None

    def _key(self, kid: str) -> RegisteredKey:
        try:
            return self.keys[kid]
        except KeyError:
            raise UnknownKey(kid) from None

    # -- questions ------------------------------------------------------------------------------

    def check_signing_key(
        self, kid: str, actor: str, at: datetime, position: int | None = None
    ) -> RegisteredKey:
        """The key, if it may sign an event by ``actor`` at time ``at`` (and log ``position``).

        Raises the KeyRegistryError subclass naming the first rule broken (module docstring).
        Without a position (writing a new event) a revoked key is refused whatever ``at`` says.
        """
        key = self._key(kid)
        if key.authority != actor:
            raise KeyNotHeldByActor(kid, key.authority, actor)
        if (position is not None and key.registered_position is not None
                and position < key.registered_position):
            raise KeyRegisteredLater(kid, key.registered_position, position)
        if key.revoked_at is not None and (
            position is None
            or at >= key.revoked_at
            or (key.revoked_position is not None and position > key.revoked_position)
        ):
            raise KeyRevoked(kid, key.revoked_at, at)
        if at < key.valid_from:
            raise KeyNotYetValid(kid, key.valid_from, at)
        if key.expires_at is not None and at >= key.expires_at:
            raise KeyExpired(kid, key.expires_at, at)
        if key.retired_at is not None and at > key.retired_at:
            raise KeyRetired(kid, key.retired_at, at)
        return key

    def key_for_signing(self, actor: str, at: datetime) -> RegisteredKey:
        """The key ``actor`` signs new events with at ``at``: its newest valid key."""
        entry = self._authority(actor)
        reasons: list[str] = []
        usable: list[RegisteredKey] = []
        for kid in entry.kids:
            try:
                usable.append(self.check_signing_key(kid, actor, at))
            except KeyRegistryError as exc:
                reasons.append(str(exc))
        if not usable:
            raise NoValidKey(actor, at, reasons)
        return max(usable, key=lambda k: k.valid_from)

    def signing_window(self, actor: str, key: RegisteredKey) -> tuple[datetime, datetime | None]:
        """The times [start, end) over which ``key_for_signing(actor, t)`` keeps returning
        ``key`` (end None: open), so a writer can reuse its choice for a whole batch."""
        ends = [t for t in (key.expires_at,) if t is not None]
        if key.retired_at is not None:
            ends.append(key.retired_at + timedelta(microseconds=1))
        ends += [self.keys[k].valid_from for k in self.authorities[actor].kids
                 if self.keys[k].valid_from > key.valid_from]
        return key.valid_from, min(ends) if ends else None

