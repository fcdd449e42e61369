"""`credit witness keygen|serve`: a witness of another party's log (workflows/witness.py);
`credit monitor serve`: a witness that mirrors the log first (workflows/monitor.py); and
`credit witnesses publish`: the platform asking its witnesses to cosign (workflows/witnesses.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cli.common import credit, emit, json_option, opened, reading, safe_text
from workflows import timestamps
from workflows import witnesses as platform_witnesses
from workflows.mirror import MirrorRefused, trusted_key
from workflows.monitor import Monitor
from workflows.witness import Witness, make_key_file, read_key_file

F = TypeVar("F", bound=Callable[..., Any])


@credit.group()
def witness() -> None:
    """Run a witness: an independent party that cosigns a log's checkpoints (C2SP tlog-witness)."""


@witness.command("keygen")
@click.option("--key", "key_file", type=click.Path(path_type=Path, dir_okay=False),
              required=True, help="Where to write the witness's private key (PEM, mode 0600).")
def keygen(key_file: Path) -> None:
    """Make a witness key; print its public key (PEM) for the platform and verifiers."""
    if key_file.exists():
        raise click.ClickException(f"{key_file} exists: a witness keeps its key")
    click.echo(make_key_file(key_file).decode("ascii"), nl=False)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        return read_key_file(path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def cosigner_options(who: str, verb: str, example: str, port: int) -> Callable[[F], F]:
    """The options a witness and a monitor share: who it is, its key and state, the log it
    cosigns (by origin and keys), where it listens."""
    options = [
        click.option("--name", required=True, help=f"The {who}'s name, e.g. {example}."),
        click.option("--key", "key_file", required=True,
                     type=click.Path(path_type=Path, dir_okay=False, exists=True)),
        click.option("--origin", required=True, help=f"The origin line of the log it {verb}."),
        click.option("--log-key", "log_keys", multiple=True, required=True,
                     type=click.Path(path_type=Path, dir_okay=False, exists=True),
                     help="PEM public key the log signs checkpoints with (repeat for each; the "
                          "first is the platform's first key, which a monitor's mirror trusts)."),
        click.option("--state", "state_file", required=True,
                     type=click.Path(path_type=Path, dir_okay=False),
                     help=f"The {who}'s state file (the last checkpoint it cosigned)."),
        click.option("--host", default="127.0.0.1", show_default=True),
        click.option("--port", type=int, default=port, show_default=True),
    ]

    def apply(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command
    return apply


def _witness(name: str, key_file: Path, origin: str, log_keys: tuple[Path, ...],
             state_file: Path) -> tuple[Witness, list[bytes]]:
    try:
        keys = [trusted_key(path) for path in log_keys]
    except MirrorRefused as exc:
        raise click.ClickException(str(exc)) from None
    return Witness(name, load_private_key(key_file), origin, keys, state_file), keys


def _serve(cosigner: Witness | Monitor, what: str, host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    from web.witness import create_witness_app

    click.echo(safe_text(f"{what} on http://{host}:{port}/"), err=True)
    run_simple(host, port, create_witness_app(cosigner), threaded=True)


@witness.command("serve")
@cosigner_options("witness", "witnesses", "court.hangzhou/witness", 8090)
def serve(name: str, key_file: Path, origin: str, log_keys: tuple[Path, ...], state_file: Path,
          host: str, port: int) -> None:
    """Serve POST /add-checkpoint: cosign a checkpoint of ORIGIN only with a valid consistency
    proof from the last one this witness cosigned; refuse a fork or a rollback."""
    cosigner, _ = _witness(name, key_file, origin, log_keys, state_file)
    _serve(cosigner, f"witness {name} of {origin}", host, port)


@credit.group()
def witnesses() -> None:
    """The platform's witnesses: ask them to cosign the latest checkpoint."""


@witnesses.command("publish")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False,
                                                         exists=True),
              help="JSON list of {name, url, key} (key: a PEM file); default: witnesses.json in "
                   "the keys folder.")
@click.option("--follow", is_flag=True, help="Keep publishing each new checkpoint.")
@click.option("--interval", type=float, default=5.0, show_default=True,
              help="With --follow: seconds between looks for a new checkpoint.")
@json_option
def publish(config_file: Path | None, follow: bool, interval: float, as_json: bool) -> None:
    """Send the latest checkpoint to every witness with the consistency proof from the last one
    it cosigned; keep each cosignature that verifies, and say which witness refused and why."""
    if not follow:
        _publish_once(config_file, as_json)
        return
    last = None
    while True:  # Ctrl-C stops it
        with opened(reading()) as ledger:
            latest = platform_witnesses.published_note(ledger)
        if latest != last:
            # a witness that refused or was away is said above, and asked again next time
            with contextlib.suppress(SystemExit):
                _publish_once(config_file, as_json)
            last = latest
        time.sleep(interval)


def _publish_once(config_file: Path | None, as_json: bool) -> None:
    with opened(reading()) as ledger:
        config = config_file or ledger.settings.keys_dir / "witnesses.json"
        results = platform_witnesses.publish(ledger, platform_witnesses.read_config(config))
        tsa = timestamps.read_config(ledger)
        stamped = None
        if tsa is not None:
            note = platform_witnesses.published_note(ledger)
            stamped = timestamps.timestamp(ledger, tsa, note)
    lines = [f"{r.name}: {r.outcome}" for r in results] or ["no witnesses configured"]
    if stamped is not None:
        lines.append(f"timestamped at {stamped.gen_time.isoformat()} by {stamped.tsa}")
    emit(as_json, {"witnesses": [vars(r) for r in results],
                   "timestamp": stamped.gen_time.isoformat() if stamped else None},
         "\n".join(lines))
    if any(r.cosignature is None for r in results):
        raise SystemExit(1)


@credit.group()
def monitor() -> None:
    """Run a monitor: a witness that mirrors the whole log and recomputes its chain map first."""


@monitor.command("serve")
@cosigner_options("monitor", "monitors", "audit.zhejiang/monitor", 8091)
@click.option("--log-url", required=True, help="The log's tiles, e.g. https://…/log.")
@click.option("--into", required=True, help="The database of the monitor's copy of the log.")
def monitor_serve(name: str, key_file: Path, origin: str, log_keys: tuple[Path, ...],
                  state_file: Path, host: str, port: int, log_url: str, into: str) -> None:
    """Serve POST /add-checkpoint as a witness does, cosigning only checkpoints its own mirror
    of the log verified, chain map included (workflows/monitor.py says what that means)."""
    from workflows.mirror import Mirror, http_fetch

    cosigner, keys = _witness(name, key_file, origin, log_keys, state_file)
    _serve(Monitor(cosigner, Mirror(into, keys[0]), http_fetch(log_url)),
           f"monitor {name} of {origin} ({log_url})", host, port)
