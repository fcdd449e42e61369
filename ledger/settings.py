"""Configuration from ``CREDIT_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///var/credit.db"
DEFAULT_KEYS_DIR = "var/keys"
DEFAULT_ORIGIN = "credit-ledger.linan/log"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    keys_dir: Path = Path(DEFAULT_KEYS_DIR)
    passphrase: str | None = None
    origin: str = DEFAULT_ORIGIN
    projections_url: str | None = None  # None: the read models live in the ledger's database
    projections: str = "embedded"  # embedded: caught up after each command; worker: by others

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("CREDIT_DATABASE_URL") or DEFAULT_DATABASE_URL,
            keys_dir=Path(env.get("CREDIT_KEYS_DIR") or DEFAULT_KEYS_DIR),
            passphrase=env.get("CREDIT_KEY_PASSPHRASE") or None,
            origin=env.get("CREDIT_LOG_ORIGIN") or DEFAULT_ORIGIN,
            projections_url=env.get("CREDIT_PROJECTIONS_URL") or None,
            projections=env.get("CREDIT_PROJECTIONS") or "embedded",
        )
