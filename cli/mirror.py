"""`credit mirror URL`: keep a verified copy of a remote ledger's log (workflows/mirror.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from cli.common import credit, emit, json_option, progress_bar, safe_text
from workflows.mirror import Mirror, MirrorRefused, MirrorUnavailable, http_fetch, trusted_key


@credit.command()
@click.argument("url")
@click.option("--into", default="sqlite:///var/mirror.db", show_default=True,
              help="The database keeping the verified copy (SQLite or PostgreSQL URL).")
@click.option("--trust", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="PEM public key of the remote platform (needed for the first sync; checked "
                   "against the copy's after).")
@click.option("--follow", is_flag=True, help="Keep syncing, every --interval seconds.")
@click.option("--interval", type=float, default=10.0, show_default=True)
@json_option
def mirror(url: str, into: str, trust: Path | None, follow: bool, interval: float,
           as_json: bool) -> None:
    """Follow the log served as tiles at URL (the window's /log), verify every event,
    signature, checkpoint and the log's consistency, and keep a verified copy; resume where the
    last sync stopped. A refusal names what failed and keeps nothing of that sync."""
    try:
        copy = Mirror(into, trusted_key(trust) if trust else None)
    except MirrorRefused as exc:
        raise click.ClickException(str(exc)) from None
    fetch = http_fetch(url)
    try:
        while True:
            try:
                with progress_bar("mirroring", None) as progress:
                    report = copy.sync(fetch, progress)
            except MirrorRefused as exc:
                for failure in exc.failures[1:20]:
                    click.echo(safe_text(f"  also: {failure}"), err=True)
                raise click.ClickException(f"refused: {exc}") from None
            except MirrorUnavailable as exc:
                if not follow:
                    raise click.ClickException(f"the log cannot be read: {exc}") from None
                click.echo(safe_text(f"the log cannot be read now: {exc}"), err=True)
            else:
                emit(as_json, {"tree_size": report.tree_size, "added": report.added,
                               "root_hash": report.root_hash.hex()},
                     f"{report.added} new entries verified; the copy holds {report.tree_size} "
                     f"(root {report.root_hash.hex()[:16]}…)")
            if not follow:
                return
            sys.stdout.flush()
            time.sleep(interval)
    finally:
        copy.close()
