"""Configuration from ``CREDIT_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from keys.pkcs8 import DEFAULT_ITERATIONS
from keys.store import SECRET_PREFIX, check_private
from ledger.storage import StoreUnavailable

DEFAULT_DATABASE_URL = "sqlite:///var/credit.db"
DEFAULT_KEYS_DIR = "var/keys"
DEFAULT_ORIGIN = "credit-ledger.linan/log"


# What `credit demo` and CREDIT_DEVELOPMENT_SECRETS=1 encrypt keys with: named as such, public.
DEVELOPMENT_SECRET = "credit-ledger-demo-only-NOT-FOR-PRODUCTION"


def _kdf_default() -> int:
    # the test suite lowers it (a cost, not a format: every file names its own count)
    return int(os.environ.get("CREDIT_KDF_ITERATIONS") or DEFAULT_ITERATIONS)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    keys_dir: Path = Path(DEFAULT_KEYS_DIR)
    # One secret for every authority's key: tests only (never read from the environment, where
    # each authority's secret is its own).
    passphrase: str | None = None
    origin: str = DEFAULT_ORIGIN
    projections_url: str | None = None  # None: the read models live in the ledger's database
    projections: str = "embedded"  # embedded: caught up after each command; worker: by others
    secrets: Mapping[str, str] = field(default_factory=dict)  # authority code -> its secret
    secrets_dir: Path | None = None  # <code>.secret files, mode 0600
    development_secrets: bool = False  # DEVELOPMENT_SECRET-<code> for every authority
    kdf_iterations: int = field(default_factory=_kdf_default)
    # Whether opening may create the ledger's tables: `credit init` and `credit demo` only (and
    # code that builds ledgers, such as tests); every other command finds a ledger or says so.
    create: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        if "CREDIT_DATABASE_URL" in env and not env["CREDIT_DATABASE_URL"].strip():
            raise StoreUnavailable("CREDIT_DATABASE_URL is set but empty: name the database "
                                   "(or unset it for the default sqlite:///var/credit.db)")
        secrets = {name[len(SECRET_PREFIX):].lower().replace("_", "-"): value
                   for name, value in env.items() if name.startswith(SECRET_PREFIX) and value}
        return cls(
            database_url=env.get("CREDIT_DATABASE_URL") or DEFAULT_DATABASE_URL,
            keys_dir=Path(env.get("CREDIT_KEYS_DIR") or DEFAULT_KEYS_DIR),
            origin=env.get("CREDIT_LOG_ORIGIN") or DEFAULT_ORIGIN,
            projections_url=env.get("CREDIT_PROJECTIONS_URL") or None,
            projections=env.get("CREDIT_PROJECTIONS") or "embedded",
            secrets=secrets,
            secrets_dir=Path(env["CREDIT_SECRETS_DIR"]) if env.get("CREDIT_SECRETS_DIR") else None,
            development_secrets=env.get("CREDIT_DEVELOPMENT_SECRETS") == "1",
            kdf_iterations=int(env.get("CREDIT_KDF_ITERATIONS") or DEFAULT_ITERATIONS),
        )

    @property
    def holds_secrets(self) -> bool:
        return bool(self.passphrase or self.secrets or self.secrets_dir
                    or self.development_secrets)

    def secret_for(self, code: str) -> str | None:
        """An authority's secret: its own variable, else its file, else the development one."""
        if code in self.secrets:
            return self.secrets[code]
        if self.secrets_dir is not None:
            path = self.secrets_dir / f"{code}.secret"
            if path.exists():
                check_private(path)
                return path.read_text(encoding="utf-8").strip()
        if self.development_secrets:
            return f"{DEVELOPMENT_SECRET}-{code}"
        return self.passphrase
