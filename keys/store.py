"""Private keys on disk: encrypted PKCS#8 files, mode 0600, one per key id, under CREDIT_KEYS_DIR.

Files: ``<kid>.key`` (PEM, ``ENCRYPTED PRIVATE KEY``, readable by ``openssl pkey``; PBES2 with
PBKDF2-HMAC-SHA256 at 600,000 rounds, ``keys/pkcs8.py``) and ``<kid>.pub`` (PEM
SubjectPublicKeyInfo). **Each authority's keys are encrypted under that authority's own secret**
(``secrets(code)``): acting as tax opens tax's key and nothing else; the platform's secret is held
apart from every department's. Secrets never touch the key folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys import pkcs8
from keys.pkcs8 import DEFAULT_ITERATIONS
from keys.signer import Signer, public_key_from_pem, public_key_to_pem

KID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,40}-\d{4}-\d{1,4}$")
MIN_PASSPHRASE_LENGTH = 12
SECRET_PREFIX = "CREDIT_KEY_SECRET_"
# An authority's code -> its secret (None when this installation does not hold it).
SecretSource = Callable[[str], "str | None"]


def authority_of(kid: str) -> str:
    """The authority a key id belongs to: ``tax`` of ``tax-2026-1``."""
    return kid.rsplit("-", 2)[0]


class KeyStoreError(Exception):
    """A key cannot be stored or loaded; the message names the file or setting at fault."""


def secret_variable(code: str) -> str:
    """The environment variable holding one authority's secret: ``CREDIT_KEY_SECRET_TAX``."""
    return f"{SECRET_PREFIX}{code.upper().replace('-', '_')}"


class PassphraseMissing(KeyStoreError):
    def __init__(self, code: str) -> None:
        super().__init__(
            f"no secret for {code!r}, whose key this needs: set {secret_variable(code)}, or put "
            f"it in $CREDIT_SECRETS_DIR/{code}.secret (mode 0600); each authority's key opens "
            "with its own secret only (`credit demo` uses development secrets)"
        )


class PassphraseTooShort(KeyStoreError):
    def __init__(self, code: str, length: int) -> None:
        super().__init__(
            f"the secret of {code!r} has {length} characters; use at least "
            f"{MIN_PASSPHRASE_LENGTH}"
        )


class PrivateKeyMissing(KeyStoreError):
    def __init__(self, kid: str, path: Path) -> None:
        super().__init__(f"no private key for {kid}: {path} does not exist")
        self.kid = kid


class KeyFileUnreadable(KeyStoreError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read key file {path}: {reason}")


class LooseKeyPermissions(KeyStoreError):
    """A key file or the key folder others could read or change: refused, with the fix."""

    def __init__(self, path: Path, mode: int, wanted: int) -> None:
        super().__init__(f"{path} has mode {mode:04o}: others may read or change it; run "
                         f"`chmod {wanted:o} {path}`")


class PinnedKeyMismatch(KeyStoreError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} pins another platform key: this key folder belongs to another "
                         "ledger")


PINNED_FILE = "trusted-platform.pem"
SIGNED_RECORD_FILE = "platform-last-signed.note"


def check_private(path: Path, *, folder: bool = False) -> None:
    """Refuse a private key file looser than 0600, or a key folder looser than 0700."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise LooseKeyPermissions(path, mode, 0o700 if folder else 0o600)


def check_trusted(path: Path) -> None:
    """Refuse a trusted public key file that others may change (group or world writable)."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o022:
        raise LooseKeyPermissions(path, mode, 0o644)


class KeyStore:
    """Encrypted private keys of the authorities this installation signs for."""

    def __init__(self, directory: Path, secrets: SecretSource | str | None,
                 iterations: int = DEFAULT_ITERATIONS) -> None:
        self.directory = directory
        # a plain string: one secret for every authority (tests and development only)
        self._secrets: SecretSource = secrets if callable(secrets) else _shared(secrets)
        self.iterations = iterations
        self._signers: dict[str, Signer] = {}

    def _password(self, kid: str) -> bytes:
        code = authority_of(kid)
        secret = self._secrets(code)
        if not secret:
            raise PassphraseMissing(code)
        if len(secret) < MIN_PASSPHRASE_LENGTH:
            raise PassphraseTooShort(code, len(secret))
        return secret.encode("utf-8")

    def private_path(self, kid: str) -> Path:
        return self.directory / f"{kid}.key"

    def public_path(self, kid: str) -> Path:
        return self.directory / f"{kid}.pub"

    def generate(self, kid: str) -> Signer:
        """Create a new key pair for ``kid``, write both files, and return its signer.

        Refuses to overwrite an existing key: a key id names one key for ever.
        """
        if not KID_PATTERN.match(kid):
            raise KeyStoreError(f"{kid!r} is not a key id of the form <authority>-<year>-<n>")
        password = self._password(kid)
        private_key = Ed25519PrivateKey.generate()
        encrypted = pkcs8.encrypt(private_key, password, self.iterations)
        public = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._folder_to_write()
        _write_new(self.private_path(kid), encrypted, mode=0o600)
        _write_new(self.public_path(kid), public, mode=0o644)
        signer = Signer(kid, private_key)
        self._signers[kid] = signer
        return signer

    def signer(self, kid: str) -> Signer:
        """The signer for ``kid``, decrypting its file on first use."""
        cached = self._signers.get(kid)
        if cached is not None:
            return cached
        path = self.private_path(kid)
        if not path.exists():
            raise PrivateKeyMissing(kid, path)
        check_private(self.directory, folder=True)
        check_private(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise KeyFileUnreadable(path, exc.strerror or str(exc)) from exc
        password = self._password(kid)
        try:
            key = serialization.load_pem_private_key(data, password)
        except ValueError as exc:
            raise KeyFileUnreadable(path, f"wrong secret for {authority_of(kid)!r} or damaged "
                                          "file") from exc
        except TypeError as exc:
            raise KeyFileUnreadable(path, "the file is not encrypted as expected") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileUnreadable(path, "not an Ed25519 private key")
        signer = Signer(kid, key)
        self._signers[kid] = signer
        return signer

    def public_key(self, kid: str) -> bytes:
        """The raw public key stored beside ``kid``'s private key."""
        path = self.public_path(kid)
        try:
            return public_key_from_pem(path.read_bytes())
        except OSError as exc:
            raise KeyFileUnreadable(path, exc.strerror or str(exc)) from exc
        except ValueError as exc:
            raise KeyFileUnreadable(path, str(exc)) from exc

    @property
    def pinned_path(self) -> Path:
        """The one platform key this installation trusts, written when the ledger is created."""
        return self.directory / PINNED_FILE

    def pin_platform_key(self, public_key: bytes) -> None:
        """Pin the platform's first public key (the trust anchor of `credit verify`)."""
        path = self.pinned_path
        pem = public_key_to_pem(public_key)
        if path.exists():
            if public_key_from_pem(path.read_bytes()) != public_key:
                raise PinnedKeyMismatch(path)
            return
        self._folder_to_write()
        _write_new(path, pem, mode=0o644)

    def _folder_to_write(self) -> None:
        """The key folder, made private if it is new; one made beforehand and left open is
        refused before a key is written into it, not by the next command to read one (nor,
        silently, by an import's signing process)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        check_private(self.directory, folder=True)

    @property
    def signed_record_path(self) -> Path:
        """The platform signer's own record of the last checkpoint it signed (its note)."""
        return self.directory / SIGNED_RECORD_FILE

    def last_signed(self) -> str | None:
        """The note of the last checkpoint this installation's platform signer signed."""
        path = self.signed_record_path
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyFileUnreadable(path, exc.strerror or str(exc)) from exc

    def record_signed(self, note: str) -> None:
        """Keep the note of a checkpoint whose transaction committed (atomically; a crash
        before this leaves the record one checkpoint behind, which is safe)."""
        path = self.signed_record_path
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(note)
        os.replace(temporary, path)

    def forget_private_key(self, kid: str) -> None:
        """A key that no longer signs leaves the folder; only its public half stays."""
        self._signers.pop(kid, None)
        self.private_path(kid).unlink(missing_ok=True)

    def kids(self) -> list[str]:
        """Key ids with a private key file in the store."""
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.key"))


def _shared(secret: str | None) -> SecretSource:
    def source(code: str) -> str | None:
        return secret
    return source


def _write_new(path: Path, data: bytes, *, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise KeyStoreError(f"{path} already exists; a key id is never reused") from exc
    except OSError as exc:
        raise KeyStoreError(f"cannot write {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)  # the umask may have narrowed or widened it
