"""The administrator's commands: create the ledger, keys, checkpoints, whole-store verification."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from domain import clock
from domain.authorities import CREDIT_OFFICE, LINAN_AUTHORITIES, AuthorityProfile
from keys.signer import fingerprint, public_key_from_pem, public_key_to_pem
from keys.store import PINNED_FILE, KeyStore, check_trusted
from ledger import tables
from ledger.application import EVENTS_TABLE, CreditLedger
from ledger.errors import LedgerError
from ledger.settings import Settings
from ledger.storage import prepare_database
from ledger.verify import LedgerVerifier, VerifyReport
from proofs.checkpoint import Checkpoint, parse_checkpoint
from workflows.extracts import TrustedKeyUnreadable
from workflows.services import CreditServices


def initialise_city(ledger: CreditLedger) -> tuple[list[str], list[str]]:
    """The platform key first, then every Lin'an authority with its key, then the bundled policy
    versions: (key ids, policy versions)."""
    kids = [ledger.initialise(LINAN_AUTHORITIES[0])]
    kids += [ledger.register_authority(p) for p in LINAN_AUTHORITIES[1:]]
    policies = CreditServices(ledger).publish_bundled(CREDIT_OFFICE)
    return kids, policies


def register_authority(ledger: CreditLedger, profile: AuthorityProfile,
                       expires_at: datetime | None = None) -> str:
    return ledger.register_authority(profile, expires_at=expires_at)


def rotate_key(ledger: CreditLedger, authority: str, expires_at: datetime | None = None) -> str:
    return ledger.rotate_key(authority, expires_at=expires_at)


def revoke_key(ledger: CreditLedger, kid: str, reason: str,
               revoked_at: datetime | None = None) -> None:
    ledger.revoke_key(kid, reason=reason, revoked_at=revoked_at)


def sign_checkpoint(ledger: CreditLedger) -> Checkpoint:
    return ledger.checkpoint()


def key_rows(ledger: CreditLedger) -> list[dict[str, Any]]:
    """Every key in the registry with its validity now."""
    now = clock.now()
    return [
        {"kid": k.kid, "authority": k.authority, "fingerprint": fingerprint(k.public_key),
         "valid_from": k.valid_from.isoformat(),
         "expires_at": k.expires_at.isoformat() if k.expires_at else None,
         "retired_at": k.retired_at.isoformat() if k.retired_at else None,
         "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
         "status": k.status_at(now)}
        for k in ledger.registry.keys.values()
    ]


def public_key_pem(ledger: CreditLedger, authority: str) -> str:
    """The authority's current public key as PEM (``platform``: the key that signs extracts)."""
    key = ledger.registry.key_for_signing(authority, clock.now())
    return public_key_to_pem(key.public_key).decode("ascii")


def policy_rows(ledger: CreditLedger) -> list[dict[str, Any]]:
    return [{"kind": kind, "version": p.version, "effective_from": p.effective_from.isoformat(),
             "source": p.source}
            for kind, versions in ledger.policies.versions.items() for p in versions]


class NoTrustAnchor(LedgerError):
    def __init__(self, pinned: Path) -> None:
        super().__init__(f"no platform key to trust: give --trust PEM (as `credit keys export "
                         f"platform` printed it where you trust it), or keep {pinned} that "
                         "`credit init` pinned; --trust-ledger-itself checks the ledger against "
                         "its own first key, which proves nothing against whoever rewrote it")


def trusted_platform_keys(settings: Settings, trust: Path | None,
                          trust_ledger_itself: bool = False) -> list[bytes] | None:
    """The one platform key to trust: ``trust``, else the key ``credit init`` pinned in the key
    folder. Never "any .pub in the folder": whoever can add a file there could add a key.
    None only when the caller asked for the unsafe self-trust by name."""
    path = trust if trust is not None else settings.keys_dir / PINNED_FILE
    if trust is None and not path.exists():
        if trust_ledger_itself:
            return None
        raise NoTrustAnchor(path)
    try:
        check_trusted(path)
        return [public_key_from_pem(path.read_bytes())]
    except OSError as exc:
        raise TrustedKeyUnreadable(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise TrustedKeyUnreadable(f"{path}: {exc}") from None


class StoreVerification:
    """``credit verify`` on the configured store. Not through CreditLedger: opening the
    application checks the key registry, and verify must report a broken registry, not stop."""

    def __init__(self, settings: Settings, trusted: Sequence[bytes] | None) -> None:
        self.settings = settings
        self.engine = create_engine(prepare_database(settings.database_url,
                                                     require_ledger=True))
        note = KeyStore(settings.keys_dir, None).last_signed()
        self.verifier = LedgerVerifier(self.engine, tables.events_table(EVENTS_TABLE),
                                       trusted_platform_keys=trusted,
                                       signed_record=parse_checkpoint(note) if note else None)

    def count_events(self) -> int:
        return self.verifier.count_events()

    def run(self, progress: Callable[[int], None] | None = None) -> VerifyReport:
        try:
            self.verifier.progress = progress
            return self.verifier.run()
        finally:
            self.engine.dispose()
