"""Key storage on disk and the key registry's validity rules."""

from __future__ import annotations

import os
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keys.registry import (
    AuthorityRegisteredFact,
    KeyExpired,
    KeyNotHeldByActor,
    KeyNotYetValid,
    KeyRegisteredLater,
    KeyRegistry,
    KeyRetired,
    KeyRevoked,
    KeyRevokedFact,
    KeyRotatedFact,
    NoValidKey,
    RegistryConflict,
    UnknownAuthority,
    UnknownKey,
)
from keys.store import (
    KeyFileUnreadable,
    KeyStore,
    KeyStoreError,
    PassphraseMissing,
    PassphraseTooShort,
    PrivateKeyMissing,
)

PASS = "a-long-enough-passphrase"
T0 = datetime(2020, 1, 1, tzinfo=UTC)


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


# -- the key store ---------------------------------------------------------------------------


def test_generated_keys_are_encrypted_pkcs8_files_readable_only_by_the_owner(
        tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys", PASS)
    signer = store.generate("tax-2026-1")
    private = store.private_path("tax-2026-1")
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert store.public_key("tax-2026-1") == signer.public_key
    assert KeyStore(tmp_path / "keys", PASS).signer("tax-2026-1").public_key == signer.public_key
    # openssl reads it with the same passphrase: the format is standard.
    out = subprocess.run(["openssl", "pkey", "-in", str(private), "-passin", f"pass:{PASS}",
                          "-pubout"], capture_output=True, text=True, check=True)
    assert out.stdout == store.public_path("tax-2026-1").read_text()


def test_a_key_id_is_never_reused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, PASS)
    store.generate("tax-2026-1")
    with pytest.raises(KeyStoreError, match="already exists"):
        store.generate("tax-2026-1")


def test_key_ids_have_the_authority_year_number_form(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="not a key id"):
        KeyStore(tmp_path, PASS).generate("../evil")


def test_without_a_passphrase_no_key_is_written_or_read(tmp_path: Path) -> None:
    with pytest.raises(PassphraseMissing, match=r"no secret for 'tax'.*CREDIT_KEY_SECRET_TAX"):
        KeyStore(tmp_path, None).generate("tax-2026-1")
    assert not list(tmp_path.iterdir())
    KeyStore(tmp_path, PASS).generate("tax-2026-1")
    with pytest.raises(PassphraseMissing):
        KeyStore(tmp_path, None).signer("tax-2026-1")


def test_a_short_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PassphraseTooShort, match="has 5 characters; use at least 12"):
        KeyStore(tmp_path, "short").generate("tax-2026-1")


def test_a_wrong_passphrase_or_damaged_file_is_named(tmp_path: Path) -> None:
    KeyStore(tmp_path, PASS).generate("tax-2026-1")
    with pytest.raises(KeyFileUnreadable, match=r"tax-2026-1\.key: wrong secret for 'tax'"):
        KeyStore(tmp_path, "another-long-passphrase").signer("tax-2026-1")
    (tmp_path / "tax-2026-1.key").write_text("garbage")
    with pytest.raises(KeyFileUnreadable, match="or damaged file"):
        KeyStore(tmp_path, PASS).signer("tax-2026-1")


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PrivateKeyMissing, match="no private key for court-2026-1"):
        KeyStore(tmp_path, PASS).signer("court-2026-1")


# -- the registry ----------------------------------------------------------------------------


def registered(code: str, kid: str, position: int, valid_from: datetime = T0,
               expires_at: datetime | None = None) -> AuthorityRegisteredFact:
    return AuthorityRegisteredFact(position, code, "department", code, code, kid,
                                   bytes([position]) * 32, valid_from, expires_at)


@pytest.fixture
def registry() -> KeyRegistry:
    r = KeyRegistry()
    r.apply(registered("platform", "platform-2020-1", 1))
    r.apply(registered("tax", "tax-2020-1", 2, expires_at=days(1000)))
    r.apply(registered("court", "court-2020-1", 3))
    r.apply(KeyRotatedFact(10, "tax", "tax-2021-1", b"\x09" * 32, days(400), None, "tax-2020-1"))
    r.apply(KeyRevokedFact(20, "tax", "tax-2020-1", days(450), "compromised"))
    return r


def test_the_first_key_fact_must_register_the_platform() -> None:
    with pytest.raises(RegistryConflict, match="must register the platform"):
        KeyRegistry().apply(registered("tax", "tax-2020-1", 1))


def test_a_key_valid_for_its_actor_at_its_time_passes(registry: KeyRegistry) -> None:
    assert registry.check_signing_key("tax-2020-1", "tax", days(100), 5).kid == "tax-2020-1"
    assert registry.check_signing_key("tax-2021-1", "tax", days(401), 11).kid == "tax-2021-1"


@pytest.mark.parametrize("kid, actor, at, position, error, text", [
    ("tax-2099-1", "tax", 1, 5, UnknownKey, "key 'tax-2099-1' is not in the key registry"),
    ("tax-2020-1", "court", 1, 5, KeyNotHeldByActor, "belongs to 'tax', not to"),
    ("tax-2021-1", "tax", 401, 9, KeyRegisteredLater, "registered at notification 10"),
    ("tax-2021-1", "tax", 399, 11, KeyNotYetValid, "is valid from"),
    ("tax-2020-1", "tax", 420, 15, KeyRetired, "was retired by rotation"),
    ("tax-2020-1", "tax", 460, 15, KeyRevoked, "was revoked at"),
    ("tax-2020-1", "tax", 100, 21, KeyRevoked, "was revoked at"),  # appended after revocation
])
def test_each_broken_key_rule_is_named(registry: KeyRegistry, kid: str, actor: str, at: float,
                                       position: int, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        registry.check_signing_key(kid, actor, days(at), position)


def test_an_expired_key_is_refused() -> None:
    r = KeyRegistry()
    r.apply(registered("platform", "platform-2020-1", 1, expires_at=days(10)))
    with pytest.raises(KeyExpired, match="expired at"):
        r.check_signing_key("platform-2020-1", "platform", days(11), 2)


def test_the_rotation_event_itself_is_still_signed_by_the_retired_key(
        registry: KeyRegistry) -> None:
    assert registry.check_signing_key("tax-2020-1", "tax", days(400), 10)


def test_a_new_event_is_signed_with_the_newest_valid_key(registry: KeyRegistry) -> None:
    assert registry.key_for_signing("tax", days(500)).kid == "tax-2021-1"
    assert registry.key_for_signing("court", days(500)).kid == "court-2020-1"


def test_writing_with_no_valid_key_is_refused_with_the_reasons(registry: KeyRegistry) -> None:
    registry.apply(KeyRevokedFact(30, "court", "court-2020-1", days(500), "lost"))
    with pytest.raises(NoValidKey, match=r"'court' has no valid key .*court-2020-1 was revoked"):
        registry.key_for_signing("court", days(600))
    with pytest.raises(UnknownAuthority, match="'labour' is not registered"):
        registry.key_for_signing("labour", days(600))


def test_conflicting_key_facts_are_refused(registry: KeyRegistry) -> None:
    with pytest.raises(RegistryConflict, match="registered twice"):
        registry.apply(registered("tax", "tax-2022-1", 40))
    with pytest.raises(RegistryConflict, match="revoked twice"):
        registry.apply(KeyRevokedFact(41, "tax", "tax-2020-1", days(460), "again"))
    with pytest.raises(RegistryConflict, match="does not belong to 'court'"):
        registry.apply(KeyRevokedFact(42, "court", "tax-2021-1", days(460), "wrong"))


def test_a_copy_is_independent(registry: KeyRegistry) -> None:
    other = registry.copy()
    other.apply(KeyRevokedFact(50, "court", "court-2020-1", days(500), "lost"))
    assert registry.keys["court-2020-1"].revoked_at is None


def test_each_authority_s_key_opens_with_its_own_secret_only(tmp_path: Path) -> None:
    secrets = {"tax": "tax-secret-0123456789", "market": "market-secret-0123456789"}
    store = KeyStore(tmp_path, secrets.get)
    store.generate("tax-2026-1")
    store.generate("market-2026-1")
    # a process given only market's secret cannot open tax's key …
    market_only = KeyStore(tmp_path, {"market": secrets["market"]}.get)
    market_only.signer("market-2026-1")
    with pytest.raises(PassphraseMissing, match="no secret for 'tax'"):
        market_only.signer("tax-2026-1")
    # … nor by passing market's secret off as tax's
    swapped = KeyStore(tmp_path, {"tax": secrets["market"]}.get)
    with pytest.raises(KeyFileUnreadable, match="wrong secret for 'tax'"):
        swapped.signer("tax-2026-1")


def test_key_files_use_pbkdf2_at_the_stated_cost_and_openssl_reads_them(tmp_path: Path) -> None:
    import subprocess
    store = KeyStore(tmp_path, PASS, iterations=600_000)
    store.generate("tax-2026-1")
    parsed = subprocess.run(["openssl", "asn1parse", "-in", str(tmp_path / "tax-2026-1.key")],
                            capture_output=True, text=True, check=True).stdout
    assert ":PBES2" in parsed and ":PBKDF2" in parsed and ":hmacWithSHA256" in parsed
    assert ":aes-256-cbc" in parsed and "INTEGER           :0927C0" in parsed  # 600,000
    opened = subprocess.run(["openssl", "pkey", "-in", str(tmp_path / "tax-2026-1.key"),
                             "-passin", f"pass:{PASS}", "-pubout"], capture_output=True,
                            text=True, check=True).stdout
    assert opened.startswith("-----BEGIN PUBLIC KEY-----")
