"""The `credit` command as a user runs it: exit codes, one-sentence errors, nothing written."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from cli.main import credit as credit_command
from domain.authorities import LINAN_AUTHORITIES
from keys.store import secret_variable
from tests.conftest import ENVIRONMENT_LOCK, PASSPHRASE, TEST_KDF_ITERATIONS

ROOT = Path(__file__).resolve().parents[2]


class Credit:
    """The `credit` command with its configuration in the environment. It runs in this process
    through click's CliRunner (a fresh interpreter per call would cost most of the suite's
    time); with ``separate_process`` it runs as `python -m cli`, exactly as a user types it."""

    def __init__(self, database_url: str, keys_dir: Path, passphrase: str | None = PASSPHRASE,
                 *, separate_process: bool = False) -> None:
        self.config = {"CREDIT_DATABASE_URL": database_url, "CREDIT_KEYS_DIR": str(keys_dir),
                       "CREDIT_KDF_ITERATIONS": TEST_KDF_ITERATIONS}
        if passphrase:  # each authority's own secret (the same test value for every one)
            self.config.update({secret_variable(a.code): passphrase for a in LINAN_AUTHORITIES})
        self.url = database_url
        self.separate_process = separate_process

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = self._in_process(args) if not self.separate_process else self._subprocess(args)
        if ok and result.returncode != 0:
            raise AssertionError(f"credit {' '.join(args)} failed:\n{result.stderr}")
        return result

    def _subprocess(self, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
        return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT,
                              env={**env, **self.config}, capture_output=True, text=True,
                              timeout=300)

    def _in_process(self, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        # every other CREDIT_ variable unset, as in the subprocess's environment
        unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("CREDIT_")}
        runner = CliRunner(env={**unset, **self.config})
        with ENVIRONMENT_LOCK:  # no background connect while the environment changes
            result = runner.invoke(credit_command, list(args), prog_name="credit")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a bug: its traceback, not an exit code
        return subprocess.CompletedProcess(["credit", *args], result.exit_code, result.stdout,
                                           result.stderr)

    def events(self) -> int:
        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT count(*) FROM credit_events")).scalar() or 0)
        finally:
            engine.dispose()


@pytest.fixture
def credit(database_url: str, tmp_path: Path) -> Credit:
    return Credit(database_url, tmp_path / "keys")


def test_the_demo_city_loads_verifies_and_is_not_written_twice(database_url: str,
                                                               tmp_path: Path) -> None:
    demo = Credit(database_url, tmp_path / "keys", passphrase=None, separate_process=True)
    out = demo("demo", "--subjects", "25", "--seed", "7")
    assert "development secret" in out.stderr
    assert "demo city written" in out.stdout
    assert "25 subjects" in out.stdout
    verified = demo("verify")
    assert verified.stdout.startswith("OK: ")
    assert "every event is under a checkpoint" in verified.stdout
    report = json.loads(demo("verify", "--json").stdout)
    assert report["ok"] is True and report["failures"] == []
    assert report["events"] == demo.events() > 25
    # the read models are built with the city: `make run` points at `credit lookup` next
    status = json.loads(demo("project", "--status", "--json").stdout)["projections"]
    assert {p["name"]: p["behind"] for p in status} == {"checkpoints": 0, "keys": 0, "subjects": 0}
    found = json.loads(demo("lookup", "杭州", "--json").stdout)["subjects"]
    assert found and all("杭州" in s["name"] for s in found)
    again = demo("demo", "--subjects", "25", "--seed", "7")
    assert "nothing written" in again.stdout
    assert demo.events() == report["events"]


def test_the_demo_city_is_deterministic(tmp_path: Path) -> None:
    def payloads(name: str) -> list[tuple[str, bytes]]:
        url = f"sqlite:///{tmp_path / name}.db"
        Credit(url, tmp_path / f"{name}-keys")("demo", "--subjects", "15", "--seed", "3")
        engine = create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT topic, state FROM credit_events ORDER BY id")).all()
        engine.dispose()
        # Keys differ between key folders; everything but the key material is the same.
        return [(topic, bytes(state).split(b"\n", 1)[1]) for topic, state in rows
                if "Authority" not in topic]

    assert payloads("a") == payloads("b")


def test_a_malformed_identifier_is_refused_and_nothing_written(credit: Credit) -> None:
    credit("init")
    before = credit.events()
    result = credit("record", "submit", "--as", "tax", "--subject", "91350100M000100Y4Z",
                    "--item", "TAX-PENALTY", "--decision-number", "1", "--decision-date",
                    "2026-01-05", "--summary", "x", ok=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: '91350100M000100Y4Z' is not valid: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert credit.events() == before


def test_an_unknown_authority_is_refused_and_nothing_written(credit: Credit) -> None:
    credit("init")
    before = credit.events()
    result = credit("record", "submit", "--as", "nobody", "--subject", "91350100M000100Y43",
                    "--item", "TAX-PENALTY", "--decision-number", "1", "--decision-date",
                    "2026-01-05", "--summary", "x", ok=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: authority 'nobody' is not registered in the ledger"
    assert credit.events() == before


def test_a_record_is_submitted_corrected_and_verified(credit: Credit) -> None:
    credit("init")
    out = json.loads(credit("record", "submit", "--as", "tax", "--subject",
                            "rid:11010519491231002X", "--subject-name", "张三",
                            "--item", "TAX-PENALTY",
                            "--decision-number", "临税罚〔2026〕1号", "--decision-date",
                            "2026-01-05", "--summary", "逾期申报", "--json").stdout)
    assert out["subject"] == "1101**********002X"
    corrected = json.loads(credit("record", "correct", out["record_id"], "--as", "tax",
                                  "--reason", "笔误", "--set", "summary=逾期申报(更正)",
                                  "--json").stdout)
    assert corrected["version"] == 2
    assert credit("verify").returncode == 0


def test_a_missing_passphrase_is_one_clear_sentence(database_url: str, tmp_path: Path) -> None:
    result = Credit(database_url, tmp_path / "keys", passphrase=None)("init", ok=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no secret for 'platform'")
    assert not (tmp_path / "keys").exists() or not list((tmp_path / "keys").iterdir())


def test_an_unreadable_key_file_is_named(credit: Credit, tmp_path: Path) -> None:
    credit("init")
    (tmp_path / "keys" / "tax-2026-1.key").write_text("not a key")
    before = credit.events()
    result = credit("record", "submit", "--as", "tax", "--subject", "91350100M000100Y43",
                    "--subject-name", "测试公司", "--item", "TAX-PENALTY", "--decision-number",
                    "1", "--decision-date", "2026-01-05", "--summary", "x", ok=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot read key file ")
    assert "tax-2026-1.key: wrong secret for 'tax' or damaged file" in result.stderr
    assert credit.events() == before


def test_a_database_that_does_not_connect_is_one_clear_sentence(tmp_path: Path) -> None:
    credit = Credit("postgresql+psycopg2://nobody@127.0.0.1:1/nothing", tmp_path / "keys")
    result = credit("verify", ok=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to postgresql+psycopg2://nobody@")
    assert len(result.stderr.strip().splitlines()) == 1


def test_keys_are_listed_rotated_and_revoked(credit: Credit) -> None:
    credit("init")
    listed = json.loads(credit("keys", "list", "--json").stdout)["keys"]
    assert {k["authority"] for k in listed} >= {"platform", "tax", "court", "credit-office"}
    assert all(k["status"] == "active" for k in listed)
    rotated = credit("keys", "rotate", "tax").stdout
    assert rotated.strip() == "tax now signs with tax-2026-2"
    credit("keys", "revoke", "tax-2026-1", "--reason", "retired after rotation")
    statuses = {k["kid"]: k["status"] for k in
                json.loads(credit("keys", "list", "--json").stdout)["keys"]}
    assert statuses["tax-2026-1"] == "revoked" and statuses["tax-2026-2"] == "active"
    refused = credit("keys", "revoke", "tax-2026-1", "--reason", "again", ok=False)
    assert refused.stderr.strip() == "error: key tax-2026-1 is already revoked"
    assert credit("verify").returncode == 0


def test_verify_names_the_first_failure_and_exits_1(credit: Credit) -> None:
    credit("init")
    engine = create_engine(credit.url)
    with engine.begin() as conn:
        nid, state = conn.execute(text(
            "SELECT id, state FROM credit_events ORDER BY id DESC LIMIT 1")).one()
        conn.execute(text("UPDATE credit_events SET state = :s WHERE id = :i"),
                     {"s": bytes(state).replace(b"Lin", b"Lxn"), "i": nid})
    engine.dispose()
    result = credit("verify", ok=False)
    assert result.returncode == 1
    assert result.stderr.startswith("FAILED: ")
    assert f"notification {nid}" in result.stderr
    report = json.loads(credit("verify", "--json", ok=False).stdout)
    assert report["ok"] is False
    first = report["failures"][0]
    assert set(first) == {"check", "kind", "notification_id", "originator_id", "version",
                          "reason"}
    assert first["notification_id"] == nid
    assert (first["check"], first["kind"]) == ("signature", "inauthentic")


def test_a_checkpoint_signature_checks_with_openssl(credit: Credit, tmp_path: Path) -> None:
    credit("init")
    cp = json.loads(credit("checkpoint", "--json").stdout)
    body, _, signature_line = cp["note"].rpartition("\n\n")
    (tmp_path / "body.txt").write_bytes((body + "\n").encode())
    blob = base64.b64decode(signature_line.split(" ")[2])
    (tmp_path / "sig.bin").write_bytes(blob[4:])
    pub = tmp_path / "keys" / f"{cp['kid']}.pub"
    result = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub),
                             "-rawin", "-in", str(tmp_path / "body.txt"), "-sigfile",
                             str(tmp_path / "sig.bin")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Signature Verified Successfully" in result.stdout


def test_verify_trusts_only_the_pinned_platform_key(credit: Credit, tmp_path: Path) -> None:
    credit("init")
    keys = tmp_path / "keys"
    assert (keys / "trusted-platform.pem").exists()
    # a key dropped into the folder is not trusted: a fully re-signed fake ledger would need it
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    fake = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.PEM,
                                                                 PublicFormat.SubjectPublicKeyInfo)
    (keys / "platform-2099-1.pub").write_bytes(fake)
    assert credit("verify").returncode == 0
    (tmp_path / "other.pem").write_bytes(fake)
    wrong = credit("verify", "--trust", str(tmp_path / "other.pem"), ok=False)
    assert wrong.returncode == 1 and "is not the trusted platform key" in wrong.stderr
    # no anchor at all: refused, unless the unsafe self-trust is asked for by name
    (keys / "trusted-platform.pem").rename(tmp_path / "pinned.pem")
    none = credit("verify", ok=False)
    assert none.returncode == 1 and none.stderr.startswith("error: no platform key to trust")
    unsafe = credit("verify", "--trust-ledger-itself")
    assert unsafe.stdout.startswith("OK (UNSAFE: trusting the ledger's own first key")
    assert json.loads(credit("verify", "--trust-ledger-itself", "--json").stdout)[
        "unsafe_self_trust"] is True
    # a trusted key others may change is refused, with the fix
    pinned = tmp_path / "pinned.pem"
    os.chmod(pinned, 0o666)
    loose = credit("verify", "--trust", str(pinned), ok=False)
    assert loose.returncode == 1 and f"chmod 644 {pinned}" in loose.stderr


def test_key_files_others_could_read_are_refused_with_the_fix(credit: Credit,
                                                             tmp_path: Path) -> None:
    credit("init")
    keys = tmp_path / "keys"
    private = next(keys.glob("tax-*.key"))
    os.chmod(private, 0o644)
    refused = credit("record", "submit", "--as", "tax", "--subject", "91350100M000100Y43",
                     "--subject-name", "测试", "--item", "TAX-PENALTY", "--decision-number", "1",
                     "--on", "2026-01-05", "--summary", "x", ok=False)
    assert refused.returncode == 1 and f"chmod 600 {private}" in refused.stderr
    os.chmod(private, 0o600)
    os.chmod(keys, 0o755)
    refused = credit("record", "submit", "--as", "tax", "--subject", "91350100M000100Y43",
                     "--subject-name", "测试", "--item", "TAX-PENALTY", "--decision-number", "1",
                     "--on", "2026-01-05", "--summary", "x", ok=False)
    assert refused.returncode == 1 and f"chmod 700 {keys}" in refused.stderr
    os.chmod(keys, 0o700)
    credit("record", "submit", "--as", "tax", "--subject", "91350100M000100Y43",
           "--subject-name", "测试", "--item", "TAX-PENALTY", "--decision-number", "1",
           "--on", "2026-01-05", "--summary", "x")


def test_a_key_folder_others_could_read_is_refused_before_a_key_is_written(
        credit: Credit, tmp_path: Path) -> None:
    # made beforehand and left open: `credit init` used to write every key into it, and only the
    # next command to read one refused (an import's signing process, silently)
    keys = tmp_path / "keys"
    keys.mkdir()
    os.chmod(keys, 0o755)
    refused = credit("init", ok=False)
    assert refused.returncode == 1 and f"chmod 700 {keys}" in refused.stderr
    assert list(keys.iterdir()) == [] and credit.events() == 0
    os.chmod(keys, 0o700)
    credit("init")
    written, files = credit.events(), sorted(keys.iterdir())
    os.chmod(keys, 0o755)
    refused = credit("keys", "rotate", "tax", ok=False)
    assert refused.returncode == 1 and f"chmod 700 {keys}" in refused.stderr
    assert sorted(keys.iterdir()) == files and credit.events() == written


def test_checkpoints_are_listed_only_when_they_check_against_the_pinned_key(
        credit: Credit, tmp_path: Path) -> None:
    credit("init")
    listed = json.loads(credit("checkpoints", "--json").stdout)["checkpoints"]
    assert listed
    engine = create_engine(credit.url)
    with engine.begin() as conn:
        seq, note = conn.execute(text(
            "SELECT seq, note FROM ledger_checkpoints ORDER BY seq DESC LIMIT 1")).one()
        body, _, signature = note.rpartition("\n\n")
        conn.execute(text("UPDATE ledger_checkpoints SET note = :n WHERE seq = :s"),
                     {"n": body.replace("\ntime 20", "\ntime 19") + "\n\n" + signature,
                      "s": seq})
    engine.dispose()
    refused = credit("checkpoints", ok=False)
    assert refused.returncode == 1 and f"checkpoint {seq}" in refused.stderr
    assert "not listed" in refused.stderr


def test_acting_as_a_department_needs_that_department_s_own_secret(database_url: str,
                                                                    tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    own = {secret_variable(a.code): f"{PASSPHRASE}-{a.code}" for a in LINAN_AUTHORITIES}
    credit.config.update(own)
    credit("init")
    submit = ("record", "submit", "--as", "tax", "--subject", "91350100M000100Y43",
              "--subject-name", "测试", "--item", "TAX-PENALTY", "--decision-number", "1",
              "--on", "2026-01-05", "--summary", "x")
    before = credit.events()
    credit.config.pop(secret_variable("tax"))  # this process holds market's secret, not tax's
    refused = credit(*submit, ok=False)
    assert refused.returncode == 1 and refused.stderr.startswith("error: no secret for 'tax'")
    credit.config[secret_variable("tax")] = own[secret_variable("market")]  # another's secret
    refused = credit(*submit, ok=False)
    assert refused.returncode == 1 and "wrong secret for 'tax'" in refused.stderr
    assert credit.events() == before
    credit.config[secret_variable("tax")] = own[secret_variable("tax")]
    credit(*submit)
    assert credit.events() > before
