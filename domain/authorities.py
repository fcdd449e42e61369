"""Authorities (the platform, the credit office, the departments) and the history of their keys.

Only the platform records these events: it registers each authority with its first public key, rotates
keys and revokes them. The key registry that signing and verification rely on is rebuilt from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain import clock
from domain.base import DomainError, LedgerAggregate
from domain.events import apply_schemas

PLATFORM = "platform"
CREDIT_OFFICE = "credit-office"
AUTHORITY_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
KINDS = ("platform", "credit_office", "department")


class NotByPlatform(DomainError):
    def __init__(self, actor: str) -> None:
        super().__init__(f"only the platform records key events, not {actor!r}")


class InvalidAuthorityCode(DomainError):
    def __init__(self, code: str) -> None:
        super().__init__(
            f"{code!r} is not an authority code (lower-case letters, digits and '-', 2-32 long)"
        )


class UnknownKind(DomainError):
    def __init__(self, kind: str) -> None:
        super().__init__(f"{kind!r} is not an authority kind ({', '.join(KINDS)})")


class KeyNotOfAuthority(DomainError):
    def __init__(self, kid: str, code: str) -> None:
        super().__init__(f"key {kid} is not a key of {code!r}")


class KeyAlreadyRevoked(DomainError):
    def __init__(self, kid: str) -> None:
        super().__init__(f"key {kid} is already revoked")


class RevocationInFuture(DomainError):
    def __init__(self, kid: str, at: datetime) -> None:
        super().__init__(
            f"key {kid} cannot be revoked from {at.isoformat()}, a time still to come "
            "(give it an expiry instead)"
        )


class LastPlatformKey(DomainError):
    def __init__(self, kid: str) -> None:
        super().__init__(
            f"key {kid} is the platform's only valid key: rotate it first, then revoke the old one"
        )


def authority_id(code: str) -> UUID:
    """Each authority has one aggregate, found by its code."""
    return uuid5(NAMESPACE_URL, f"credit-ledger:authority:{code}")


@dataclass
class KeyPeriod:
    """One key of the authority as the aggregate tracks it."""

    kid: str
    valid_from: datetime
    expires_at: datetime | None
    retired_at: datetime | None = None
    revoked_at: datetime | None = None

    def usable_at(self, at: datetime) -> bool:
        return (
            self.valid_from <= at
            and (self.expires_at is None or at < self.expires_at)
            and self.retired_at is None
            and self.revoked_at is None
        )


class Authority(LedgerAggregate):
    """An authority that signs events, with its keys over time."""

    @staticmethod
    def create_id(*, code: str, **_: object) -> UUID:
        return authority_id(code)

    @event("Registered")
    def __init__(
        self,
        *,
        actor: str,
        code: str,
        kind: str,
        name_zh: str,
        name_en: str,
        kid: str,
        public_key: str,
        valid_from: datetime,
        expires_at: datetime | None,
    ) -> None:
        self.code = code
        self.kind = kind
        self.name_zh = name_zh
        self.name_en = name_en
        self.keys: list[KeyPeriod] = [KeyPeriod(kid, valid_from, expires_at)]

    @classmethod
    def register(
        cls,
        *,
        actor: str,
        code: str,
        kind: str,
        name_zh: str,
        name_en: str,
        kid: str,
        public_key: str,
        valid_from: datetime,
        expires_at: datetime | None = None,
    ) -> Authority:
        """Register an authority with its first public key (base64 of the raw 32 bytes)."""
        check_by_platform(actor)
        if not AUTHORITY_CODE.match(code):
            raise InvalidAuthorityCode(code)
        if kind not in KINDS:
            raise UnknownKind(kind)
        return cls(
            actor=actor, code=code, kind=kind, name_zh=name_zh, name_en=name_en, kid=kid,
            public_key=public_key, valid_from=valid_from, expires_at=expires_at,
        )

    def rotate_key(
        self,
        *,
        actor: str,
        kid: str,
        public_key: str,
        valid_from: datetime,
        expires_at: datetime | None = None,
    ) -> None:
        """Issue a new key; the key in use until now is retired from ``valid_from``."""
        check_by_platform(actor)
        current = self.current_key(valid_from)
        self._key_rotated(
            actor=actor, kid=kid, public_key=public_key, valid_from=valid_from,
            expires_at=expires_at, retires=current.kid if current else None,
        )

    @event("KeyRotated")
    def _key_rotated(
        self,
        *,
        actor: str,
        kid: str,
        public_key: str,
        valid_from: datetime,
        expires_at: datetime | None,
        retires: str | None,
    ) -> None:
        for period in self.keys:
            if period.kid == retires:
                period.retired_at = valid_from
        self.keys.append(KeyPeriod(kid, valid_from, expires_at))

    def revoke_key(self, *, actor: str, kid: str, revoked_at: datetime, reason: str) -> None:
        """Revoke a key from ``revoked_at`` (which may lie in the past: the time of a compromise)."""
        check_by_platform(actor)
        now = clock.now()
        period = self.key(kid)
        if period.revoked_at is not None:
            raise KeyAlreadyRevoked(kid)
        if revoked_at > now:
            raise RevocationInFuture(kid, revoked_at)
        if self.code == PLATFORM and not any(
            p.usable_at(now) for p in self.keys if p.kid != kid
        ):
            raise LastPlatformKey(kid)
        self._key_revoked(actor=actor, kid=kid, revoked_at=revoked_at, reason=reason)

    @event("KeyRevoked")
    def _key_revoked(self, *, actor: str, kid: str, revoked_at: datetime, reason: str) -> None:
        self.key(kid).revoked_at = revoked_at

    def key(self, kid: str) -> KeyPeriod:
        for period in self.keys:
            if period.kid == kid:
                return period
        raise KeyNotOfAuthority(kid, self.code)

    def current_key(self, at: datetime) -> KeyPeriod | None:
        usable = [p for p in self.keys if p.usable_at(at)]
        return max(usable, key=lambda p: p.valid_from) if usable else None



def numbered_kid(code: str, year: int, n: int) -> str:
    """Key ids read ``<code>-<year>-<n>``: the n-th key issued to the authority that year."""
    return f"{code}-{year}-{n}"


def check_by_platform(actor: str) -> None:
    if actor != PLATFORM:
        raise NotByPlatform(actor)


@dataclass(frozen=True)
class AuthorityProfile:
    """An authority of the Lin'an platform as configured data."""

    code: str
    kind: str
    name_zh: str
    name_en: str


# The platform, the credit office and the departments that feed the joint credit platform
# (临政函〔2015〕108号: every department and public-service body shares its credit information).
LINAN_AUTHORITIES: tuple[AuthorityProfile, ...] = (
    AuthorityProfile(PLATFORM, "platform", "信用临安平台", "Credit Lin'an platform"),
    AuthorityProfile(CREDIT_OFFICE, "credit_office", "临安区社会信用体系建设领导小组办公室",
                     "Lin'an social credit office"),
    AuthorityProfile("tax", "department", "国家税务总局杭州市临安区税务局", "Lin'an tax bureau"),
    AuthorityProfile("court", "department", "杭州市临安区人民法院", "Lin'an People's Court"),
    AuthorityProfile("market", "department", "杭州市临安区市场监督管理局",
                     "Lin'an market supervision bureau"),
    AuthorityProfile("env", "department", "杭州市生态环境局临安分局",
                     "Lin'an ecology and environment branch"),
    AuthorityProfile("labour", "department", "杭州市临安区人力资源和社会保障局",
                     "Lin'an human resources and social security bureau"),
    AuthorityProfile("housing", "department", "杭州市临安区住房和城乡建设局",
                     "Lin'an housing and urban-rural development bureau"),
    AuthorityProfile("safety", "department", "杭州市临安区应急管理局",
                     "Lin'an emergency management bureau"),
    AuthorityProfile("transport", "department", "杭州市临安区交通运输局", "Lin'an transport bureau"),
    AuthorityProfile("water", "department", "杭州市临安区水务有限公司", "Lin'an water utility"),
    AuthorityProfile("power", "department", "国网浙江杭州市临安区供电公司", "Lin'an power supply"),
    AuthorityProfile("fire", "department", "杭州市临安区消防救援大队", "Lin'an fire and rescue"),
    AuthorityProfile("resources", "department", "杭州市规划和自然资源局临安分局",
                     "Lin'an planning and natural resources branch"),
)


apply_schemas(Authority)
