"""Fixtures shared by every test.

Storage tests run on both SQLite and PostgreSQL through the ``database_url`` fixture. PostgreSQL
tests create their own database on 127.0.0.1:5432 (``CREDIT_TEST_PG_URL`` names the server's
admin URL) and drop it afterwards. Without a reachable server they skip, saying how to enable
them; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import queue
import random
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from domain import clock
from domain.authorities import LINAN_AUTHORITIES
from domain.identifiers import SubjectRef
from keys.store import KeyStore
from ledger.application import CreditLedger
from ledger.settings import Settings
from projections.runner import ProjectionRunner
from projections.schema import TABLES
from workflows import demo_city
from workflows.services import CreditServices, RecordSubmission


def _without_ssl(url: str) -> str:
    """The tests' server is local. Without SSL, libpq does not initialise OpenSSL per connection:
    psycopg2-binary's libpq has crashed (SIGSEGV) when threads (the database pool below) and
    the tests connected at the same moment while it did."""
    parsed = make_url(url)
    if "sslmode" not in parsed.query:
        parsed = parsed.update_query_dict({"sslmode": "disable"})
    return parsed.render_as_string(hide_password=False)


PG_ADMIN_URL = _without_ssl(os.environ.get(
    "CREDIT_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"))
# Held while the pool's threads connect (one at a time), and while a test changes the process's
# environment (click's CliRunner sets CREDIT_* variables): libpq reads the environment as it
# connects, and a setenv racing that getenv crashed the process (SIGSEGV in psycopg2.connect).
ENVIRONMENT_LOCK = threading.Lock()
_ADMIN_LOCK = ENVIRONMENT_LOCK
PASSPHRASE = "test-passphrase-0123456789"
# Key files are written with 2,048 PBKDF2 rounds in tests (600,000 otherwise): a cost, not a
# format, and thousands of keys are made and opened here.
TEST_KDF_ITERATIONS = "2048"
os.environ["CREDIT_KDF_ITERATIONS"] = TEST_KDF_ITERATIONS
ATTACKER_COPIES = "kept-by-an-attacker"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]

_pg_problem: str | None = None
_pg_checked = False


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    global _pg_checked, _pg_problem
    if not _pg_checked:
        _pg_checked = True
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            _pg_problem = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        finally:
            engine.dispose()
    return _pg_problem


def require_postgres() -> None:
    problem = postgres_problem()
    if problem is None:
        return
    message = (f"PostgreSQL is not reachable at {make_url(PG_ADMIN_URL).render_as_string()}: "
               f"{problem}. Start it with `pg_ctlcluster --skip-systemctl-redirect "
               f"$(ls /etc/postgresql) main start` or set CREDIT_TEST_PG_URL")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def create_pg_database(template: str | None = None) -> str:
    name = f"credit_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with _ADMIN_LOCK, engine.connect() as conn:
            suffix = f" TEMPLATE {template}" if template else ""
            conn.execute(text(f"CREATE DATABASE {name}{suffix}"))
            # A test database need not survive a power cut: commits skip waiting for the disk
            # (what they write, and in which order, is the same).
            conn.execute(text(f"ALTER DATABASE {name} SET synchronous_commit = off"))
    finally:
        engine.dispose()
    return name


def drop_pg_database(name: str) -> None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with _ADMIN_LOCK, engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        engine.dispose()


class DatabasePool:
    """Copies of one PostgreSQL database (or empty ones) made ahead by a background thread, and
    used ones dropped by it, while the tests run: CREATE DATABASE is a tenth of a second the
    server spends mostly waiting on its disk, which would otherwise add up across the suite."""

    AHEAD = 3

    def __init__(self, template: str | None) -> None:
        self.template = template
        self.ready: queue.Queue[str | BaseException] = queue.Queue()
        self.wanted = threading.Semaphore(self.AHEAD)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._make, daemon=True,
                                       name=f"pg-pool-{template or 'empty'}")
        self.thread.start()

    def _make(self) -> None:
        while True:
            self.wanted.acquire()
            if self.stopping.is_set():
                return
            try:
                self.ready.put(create_pg_database(self.template))
            except BaseException as exc:  # handed to the test that takes it
                self.ready.put(exc)
                return

    def take(self) -> str:
        made = self.ready.get(timeout=120)
        if isinstance(made, BaseException):
            raise made
        self.wanted.release()
        return made

    def close(self) -> None:
        self.stopping.set()
        self.wanted.release()
        self.thread.join(timeout=120)
        while not self.ready.empty():
            made = self.ready.get_nowait()
            if isinstance(made, str):
                drop_pg_database(made)


class Dropper:
    """Drops used test databases in the background."""

    def __init__(self) -> None:
        self.names: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._drop, daemon=True, name="pg-dropper")
        self.thread.start()

    def _drop(self) -> None:
        while (name := self.names.get()) is not None:
            drop_pg_database(name)

    def close(self) -> None:
        self.names.put(None)
        self.thread.join(timeout=120)


_pools: dict[str | None, DatabasePool] = {}
_dropper: list[Dropper] = []


def fresh_pg_database(template: str | None = None) -> str:
    """An empty database, or a copy of ``template``, from its pool."""
    if template not in _pools:
        _pools[template] = DatabasePool(template)
    return _pools[template].take()


def discard_pg_database(name: str) -> None:
    if not _dropper:
        _dropper.append(Dropper())
    _dropper[0].names.put(name)


def close_pg_pools() -> None:
    for pool in _pools.values():
        pool.close()
    _pools.clear()
    for dropper in _dropper:
        dropper.close()
    _dropper.clear()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    close_pg_pools()


def pg_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgres()
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database on the backend under test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'credit.db'}"
        return
    name = fresh_pg_database()
    try:
        yield pg_url(name)
    finally:
        discard_pg_database(name)


@pytest.fixture
def settings(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[Settings]:
    """An empty ledger's settings; with ``@pytest.mark.initialised``, a copy of the ledger that
    ``initialised`` builds (made once per database for the whole session)."""
    if request.node.get_closest_marker("initialised") is not None:
        request.getfixturevalue("template_root")
        with copy_of("initialised", backend, tmp_path) as copied:
            yield copied
        return
    url = request.getfixturevalue("database_url")
    yield Settings(database_url=url, keys_dir=tmp_path / "keys", passphrase=PASSPHRASE)


@pytest.fixture
def ledger(settings: Settings) -> Iterator[CreditLedger]:
    app = CreditLedger(settings)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def services(ledger: CreditLedger) -> CreditServices:
    return CreditServices(ledger)


def at(text_: str) -> datetime:
    """A UTC instant from ISO text, for frozen clocks in tests."""
    moment = datetime.fromisoformat(text_)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


ENTERPRISE = SubjectRef("uscc", "91350100M000100Y43")
PERSON = SubjectRef("rid", "11010519491231002X")


ITEMS = {"tax": "TAX-PENALTY", "market": "MKT-PENALTY", "court": "COURT-DEBTOR",
         "credit-office": "CO-HONOUR", "labour": "LAB-SOCIAL-INS"}


def submission(actor: str, n: int, subject: SubjectRef = ENTERPRISE,
               decided: date = date(2020, 1, 15)) -> RecordSubmission:
    return RecordSubmission(actor=actor, subject=subject, item_code=ITEMS[actor],
                            decision_number=f"临{actor}〔{decided.year}〕{n}号",
                            decision_date=decided, summary=f"处罚决定 {n}",
                            details={"amount": f"{n * 100}.00"},
                            subject_name="测试主体" if subject.scheme == "uscc" else "张三")


def initialised(services: CreditServices, when: str = "2020-01-01T00:00:00") -> None:
    """The platform, the credit office, tax, market and court, and every bundled policy."""
    with clock.frozen_at(at(when)):
        services.ledger.initialise(LINAN_AUTHORITIES[0])
        for profile in LINAN_AUTHORITIES[1:5]:
            services.ledger.register_authority(profile)
        services.publish_bundled()


def build_scenario(app: CreditLedger) -> None:
    """A small history with every kind of key event, used by the tamper tests.

    2020-01-01 platform, credit office, tax, market, court registered, policies published;
    records in batches; 2021-06-01 the tax key rotated; 2021-07-01 the old tax key revoked from
    2021-06-15; more records and a correction after that.
    """
    services = CreditServices(app)
    initialised(services, "2020-01-01T01:00:00")
    for month in range(3, 9):
        with clock.frozen_at(at(f"2020-{month:02d}-10T02:00:00")):
            services.submit_records([submission("tax", month * 10 + i,
                                                decided=date(2020, month, 1)) for i in range(3)])
            services.submit_records([submission("market", month * 10 + i, PERSON,
                                                decided=date(2020, month, 2)) for i in range(2)])
    # an attacker keeps a copy of the tax key before it is retired and revoked (the ledger
    # deletes its own copy then): the tamper tests sign with it
    kept = app.keystore.directory / ATTACKER_COPIES
    kept.mkdir(mode=0o700)
    shutil.copy2(app.keystore.private_path("tax-2020-1"), kept)
    with clock.frozen_at(at("2021-06-01T02:00:00")):
        app.rotate_key("tax")
    with clock.frozen_at(at("2021-07-01T02:00:00")):
        app.revoke_key("tax-2020-1", reason="private key compromised",
                       revoked_at=at("2021-06-15T00:00:00"))
    with clock.frozen_at(at("2021-08-01T02:00:00")):
        ids = services.submit_records([submission("tax", 900 + i, decided=date(2021, 7, 20))
                                       for i in range(3)])
    with clock.frozen_at(at("2021-08-02T02:00:00")):
        services.correct_record(ids[0], actor="tax", reason="笔误",
                                changes={"summary": "更正后的摘要"})
        services.submit_records([submission("court", 1, decided=date(2021, 8, 1))])


@dataclass
class Template:
    url: str
    keys_dir: Path
    pg_name: str | None


_templates: dict[tuple[str, str], Template] = {}
_template_root: list[Path] = []


@pytest.fixture(scope="session")
def template_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("templates")
    _template_root.append(root)
    yield root
    close_pg_pools()  # no copy of a template may be under way while it is dropped
    for template in _templates.values():
        if template.pg_name:
            drop_pg_database(template.pg_name)
    _templates.clear()


def initialised_only(app: CreditLedger) -> None:
    initialised(CreditServices(app), "2020-01-01T00:00:00")


def demo_city_with_read_models(app: CreditLedger) -> None:
    """The demo city of `credit demo --subjects 60`, with its read models built."""
    demo_city.build(app, CITY_SUBJECTS, 2015)
    # and one enterprise whose whole file is public (two recent penalties, nothing else): the
    # window gives anyone its signed report; and one on the black list (a serious tax
    # violation): the credit checks find it barred. In the order of time, as the ledger's is.
    today = clock.today_in_china()
    services = CreditServices(app)

    def on(days_ago: int) -> datetime:
        return datetime.combine(today - timedelta(days=days_ago), datetime.min.time(), tzinfo=UTC)

    def penalty(n: int, days_ago: int) -> None:
        with clock.frozen_at(on(days_ago - 1)):
            services.submit_records([replace(
                submission("tax", n, decided=today - timedelta(days=days_ago)),
                subject_name=WHOLLY_PUBLIC_NAME)])

    penalty(1, 30)  # after the demo city's last day (demo_city.END)
    with clock.frozen_at(on(24)):
        (serious,) = services.submit_records([replace(
            submission("tax", 3, BARRED, today - timedelta(days=25)),
            item_code="TAX-MAJOR-VIOLATION", subject_name=BARRED_NAME)])
    penalty(2, 20)
    with clock.frozen_at(on(10)):
        services.add_listing("credit-office", list_name="black", subject=BARRED,
                             legal_basis="《浙江省公共信用信息管理条例》第二十四条",
                             basis_records=[serious], start=today - timedelta(days=10),
                             notified_on=today - timedelta(days=15),
                             removal_conditions="补缴税款及滞纳金并完成信用修复")
    runner = ProjectionRunner(app)
    for name in TABLES:
        runner.rebuild(name)


CITY_SUBJECTS = 60
WHOLLY_PUBLIC_NAME = "临安示范科技有限公司"
BARRED = SubjectRef("uscc", demo_city.make_uscc(random.Random(99), "330112"))
BARRED_NAME = "临安失信示例有限公司"
BUILDERS = {"scenario": build_scenario, "initialised": initialised_only,
            "city": demo_city_with_read_models}


def template(kind: str, backend: str, root: Path) -> Template:
    """A ledger built once per kind and backend per session, to copy from."""
    key = (kind, backend)
    if key not in _templates:
        keys_dir = root / f"{kind}-{backend}-keys"
        if backend == "sqlite":
            url = f"sqlite:///{root / f'{kind}.db'}"
            pg_name = None
        else:
            pg_name = create_pg_database()
            url = pg_url(pg_name)
        app = CreditLedger(Settings(database_url=url, keys_dir=keys_dir, passphrase=PASSPHRASE))
        try:
            BUILDERS[kind](app)
        finally:
            app.close()
        _templates[key] = Template(url, keys_dir, pg_name)
    return _templates[key]


@contextmanager
def copy_of(kind: str, backend: str, folder: Path) -> Iterator[Settings]:
    """Settings of a fresh copy of a template ledger (database and keys) under ``folder``."""
    source_template = template(kind, backend, _template_root[0])
    keys_dir = folder / "keys"
    shutil.copytree(source_template.keys_dir, keys_dir)
    if source_template.pg_name is None:
        source = make_url(source_template.url).database
        assert source is not None
        for suffix in ("", "-wal", "-shm"):
            if Path(source + suffix).exists():
                shutil.copy(source + suffix, folder / f"credit.db{suffix}")
        yield Settings(database_url=f"sqlite:///{folder / 'credit.db'}", keys_dir=keys_dir,
                       passphrase=PASSPHRASE)
        return
    name = fresh_pg_database(source_template.pg_name)
    try:
        yield Settings(database_url=pg_url(name), keys_dir=keys_dir, passphrase=PASSPHRASE)
    finally:
        discard_pg_database(name)


@pytest.fixture
def scenario(backend: str, template_root: Path, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a fresh copy of the scenario ledger (database and keys)."""
    with copy_of("scenario", backend, tmp_path) as settings:
        yield settings


@pytest.fixture
def city(backend: str, template_root: Path, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a fresh copy of the demo city (60 subjects, read models built)."""
    with copy_of("city", backend, tmp_path) as settings:
        yield settings


@pytest.fixture
def keystore(scenario: Settings) -> KeyStore:
    return KeyStore(scenario.keys_dir, PASSPHRASE)


# -- parties in their own processes (witnesses, a monitor, a TSA) ------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_answering(url: str, seconds: float = 20.0) -> None:
    """Return once an HTTP server answers at ``url`` with any status (a GET to a POST-only
    resource answers 4xx: it is up); fail the test if none does in time."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing answers at {url}") from None
            time.sleep(0.1)
