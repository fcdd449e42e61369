"""`credit import`: a department's batch file, all or nothing."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import as_option, credit, emit, json_option, progress_bar, services
from workflows.importer import Importer


@credit.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@as_option
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]),
              help="Default: from the file name (.jsonl or .csv).")
@json_option
def import_file(file: Path, actor: str, fmt: str | None, as_json: bool) -> None:
    """Import FILE (JSON Lines or CSV, docs/IMPORT.md) as AUTHORITY. One bad row refuses the
    whole file, listing every bad row; nothing is written."""
    with services() as svc, progress_bar(f"importing {file.name}", None) as progress:
        summary = Importer(svc, actor).run(file, fmt, progress)
    emit(as_json, vars(summary),
         f"imported {file}: {summary.rows} rows, {summary.submitted} records submitted, "
         f"{summary.corrected} corrected, {summary.revoked} revoked, "
         f"{summary.subjects_registered} subjects registered, {summary.events} signed events")
