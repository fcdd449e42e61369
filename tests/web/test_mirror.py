"""`credit mirror`: a verified copy of a remote log, followed through its tiles, on SQLite and
PostgreSQL (the mirrored ledger and the copy on the same kind of database). The copy grows
with the log and resumes where it stopped; a fork, a rollback, a tampered entry and a foreign
platform key are refused by name, and a refused sync keeps nothing."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, func, select
from werkzeug.serving import make_server

from ledger.settings import Settings
from tests.conftest import copy_of
from tests.web.test_api import bearer, events, issue, record
from web import create_app
from workflows import mirror as mirror_module
from workflows.mirror import Mirror, MirrorRefused, entries

ROOT = Path(__file__).resolve().parents[2]
Fetch = Callable[[str], bytes | None]


def fetcher(client: FlaskClient) -> Fetch:
    def fetch(path: str) -> bytes | None:
        response = client.get(f"/log/{path}")
        return response.get_data() if response.status_code == 200 else None
    return fetch


def platform_key(client: FlaskClient) -> bytes:
    from keys.signer import public_key_from_pem
    return public_key_from_pem(client.get("/transparency/platform.pem").get_data())


def kept(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(entries)).scalar() or 0)
    finally:
        engine.dispose()


@pytest.fixture
def other_city(backend: str, template_root: Path, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """A second copy of the same city: the same keys, so the same platform could serve it."""
    monkeypatch.setenv("CREDIT_REPORTS_DIR", str(tmp_path / "other-reports"))
    with copy_of("city", backend, tmp_path / "other") as settings:
        app = create_app(settings)
        app.extensions["settings"] = settings
        yield app
        app.extensions["credit_door"].close()


def test_the_copy_follows_the_log_and_resumes_where_it_stopped(
        client: FlaskClient, city: Settings, database_url: str) -> None:
    copy = Mirror(database_url, platform_key(client))
    try:
        first = copy.sync(fetcher(client))
        assert first.added == first.tree_size == events(city)
        assert copy.sync(fetcher(client)).added == 0  # nothing new
        token = bearer(issue(city, "tax"))
        assert client.post("/api/records", json=record(60), headers=token).status_code == 201
        second = copy.sync(fetcher(client))
        assert second.tree_size == events(city) and second.added == events(city) - first.tree_size
    finally:
        copy.close()
    again = Mirror(database_url)  # a later run: the trusted key is the copy's own
    try:
        assert again.status() is not None and again.sync(fetcher(client)).added == 0
    finally:
        again.close()
    assert kept(database_url) == events(city)


def test_a_fork_and_a_rollback_are_refused_and_keep_nothing(
        client: FlaskClient, city: Settings, other_city: Flask, database_url: str) -> None:
    """The platform holds its key and two databases: after the mirror verified one history, it
    is shown an older checkpoint of it (signed, genuine), then a history that diverges."""
    other = other_city.test_client()
    copy = Mirror(database_url, platform_key(client))
    try:
        copy.sync(fetcher(client))
        ours = client.post("/api/records", json=record(61), headers=bearer(issue(city, "tax")))
        assert ours.status_code == 201
        copy.sync(fetcher(client))
        held = kept(database_url)
        with pytest.raises(MirrorRefused, match="a rollback"):
            copy.sync(fetcher(other))  # the same city before the record: smaller
        theirs = other_city.extensions["settings"]
        for n in range(62, 65):  # a longer history on the other copy
            made = other.post("/api/records", json=record(n), headers=bearer(issue(theirs, "tax")))
            assert made.status_code == 201
        with pytest.raises(MirrorRefused, match="forked or rewritten"):
            copy.sync(fetcher(other))
    finally:
        copy.close()
    assert kept(database_url) == held


def test_a_tampered_entry_and_a_foreign_key_are_refused(client: FlaskClient, city: Settings,
                                                        database_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mirror_module, "PROCESSES_FROM", 100)  # the failure found in a worker
    fetch = fetcher(client)

    def tampered(path: str) -> bytes | None:
        body = fetch(path)
        if body is not None and path.startswith("tile/entries/"):
            at = body.index(b'"amount":"') + len(b'"amount":"')  # a penalty's amount
            digit = b"1" if body[at:at + 1] != b"1" else b"2"
            body = body[:at] + digit + body[at + 1:]
        return body

    copy = Mirror(database_url, platform_key(client))
    try:
        with pytest.raises(MirrorRefused) as refused:
            copy.sync(tampered)
        assert "signature does not match" in str(refused.value)
        assert copy.status() is None and kept(database_url) == 0
    finally:
        copy.close()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    foreign = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    copy = Mirror(database_url, foreign)
    try:
        with pytest.raises(MirrorRefused, match="is not the trusted one"):
            copy.sync(fetch)
    finally:
        copy.close()


def test_credit_mirror_over_http(app: Flask, client: FlaskClient, city: Settings,
                                 database_url: str, tmp_path: Path) -> None:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pem = tmp_path / "platform.pem"
    pem.write_bytes(client.get("/transparency/platform.pem").get_data())
    base = f"http://127.0.0.1:{server.server_port}/log"
    try:
        ran = subprocess.run([sys.executable, "-m", "cli", "mirror", base, "--into", database_url,
                              "--trust", str(pem), "--json"], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
        assert ran.returncode == 0, ran.stderr
        assert f'"tree_size": {events(city)}' in ran.stdout
        refused = subprocess.run([sys.executable, "-m", "cli", "mirror", base + "/nowhere",
                                  "--into", database_url], cwd=ROOT, capture_output=True,
                                 text=True, timeout=300)
        assert refused.returncode != 0 and "refused: the log serves no checkpoint" in \
            refused.stderr
    finally:
        server.shutdown()
