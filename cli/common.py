"""What every `credit` command shares: the group, error reporting, opening the ledger, parsing."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from domain import clock
from domain.identifiers import SubjectRef, parse_subject
from domain.records import today_in_china
from projections.runner import ProjectionRunner
from workflows.services import CreditServices
from workflows.session import USER_ERRORS, CreditLedger, Settings, read_only
from workflows.session import opened as opened_ledger


class CreditGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            fail(one_sentence(exc))


# What drivers say when the connection to the database went away mid-command (the server
# restarted, the backend was terminated, the network dropped).
_LOST_CONNECTION = ("connection already closed", "server closed the connection",
                    "terminating connection", "connection is closed", "could not receive data",
                    "could not send data", "SSL SYSCALL error", "connection was lost")


def one_sentence(exc: BaseException) -> str:
    """A user error as one sentence: a refusing or vanished database says what happened, not
    its SQL or the driver's help links."""
    text_ = str(getattr(exc, "orig", None) or exc).strip()
    # the driver's first line, without SQLAlchemy's "(psycopg2.OperationalError) " prefix
    first = re.sub(r"^\([\w.]+\) ", "", text_.splitlines()[0]) if text_ else type(exc).__name__
    if "database is locked" in text_:
        return ("the ledger is busy: another writer held it longer than this command waits; "
                "nothing was written: run the command again")
    if "readonly database" in text_ or "read-only" in text_:
        return f"the database cannot be written (it is read-only): {first}"
    if "disk I/O error" in text_ or "No space left" in text_ or "database or disk is full" in text_:
        return (f"the database could not write to its disk (full, or failing): "
                f"{first}; nothing of this command was written")
    if getattr(exc, "connection_invalidated", False) or any(
            lost in text_ for lost in _LOST_CONNECTION):
        # a commit whose reply was lost may have landed: so not "nothing was written"
        return (f"the connection to the database was lost ({first}): what this command had not "
                f"committed is rolled back by the database; running it again is safe (what is "
                f"already in the ledger is refused, never written twice)")
    if (getattr(exc, "orig", None) is not None or "\n[SQL:" in text_
            or "\n(Background on this error" in text_):
        return first
    return text_  # our own messages may list several lines (an import's bad rows)


@click.group(cls=CreditGroup, context_settings={"help_option_names": ["-h", "--help"]})
def credit() -> None:
    """信用临安 credit ledger: signed, append-only, verifiable.

    Configuration comes from CREDIT_DATABASE_URL (default sqlite:///var/credit.db),
    CREDIT_KEYS_DIR (default var/keys), CREDIT_KEY_SECRET_<AUTHORITY> (or CREDIT_SECRETS_DIR)
    and CREDIT_LOG_ORIGIN.
    """


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


# Control characters a terminal would act on (escape sequences can retitle a window, move the
# cursor or hide text): data printed as text never carries them. JSON escapes them itself.
_CONTROLS = {c: None for c in [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)]}


def safe_text(text: str) -> str:
    """Text fit for a terminal: control characters removed (line breaks and tabs kept)."""
    return text.translate(_CONTROLS)


def emit(as_json: bool, data: Any, text: str) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str) if as_json
               else safe_text(text))


def settings() -> Settings:
    """The configured ledger, which must exist (only `init` and `demo` create one)."""
    return replace(Settings.from_env(), create=False)


def reading() -> Settings:
    """The configured ledger, opened to read only (no passphrase needed)."""
    return read_only(settings())


@contextmanager
def opened(config: Settings | None = None) -> Iterator[CreditLedger]:
    with opened_ledger(config or settings()) as ledger:
        yield ledger


@contextmanager
def writing(config: Settings | None = None) -> Iterator[CreditLedger]:
    """The ledger for a command that writes; in embedded mode the read models catch up after
    the command, so what was just written can be read back at once."""
    with opened(config) as ledger:
        yield ledger
        if ledger.settings.projections == "embedded":
            catch_up_after_commit(ledger)


def catch_up_after_commit(ledger: CreditLedger) -> None:
    """Bring the read models up after a write that has committed. If that fails, the write
    stands: say so, and how the read models come up to date (any later command catches up)."""
    try:
        runner(ledger).catch_up()
    except Exception as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(
            exc).__name__
        click.echo(f"warning: the write is safe in the ledger, but the read models could not "
                   f"catch up ({reason}); the next command catches them up, or run "
                   "`credit project`", err=True)


@contextmanager
def services() -> Iterator[CreditServices]:
    """The credit services, for a command that writes (see ``writing``)."""
    with writing() as ledger:
        yield CreditServices(ledger)


def runner(ledger: CreditLedger) -> ProjectionRunner:
    return ProjectionRunner.for_ledger(ledger)


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal (rate and time left); silence elsewhere."""
    if not sys.stderr.isatty():
        yield lambda done: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """Rows in aligned columns: rich measures the width of Chinese names, a format spec does
    not. Off a terminal the lines are not cut to 80 columns."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    table = Table(*headers, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for row in rows:
        table.add_row(*("" if cell is None else safe_text(str(cell)) for cell in row))
    console = Console(width=None if sys.stdout.isatty() else 1000, highlight=False,
                      emoji=False, markup=False)
    with console.capture() as captured:
        console.print(table)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


# What a time option accepts, said once, the same way, in every --help.
TIME_HELP = ("an ISO date-time (China time, UTC+8, unless it names a zone), or a date "
             "YYYY-MM-DD meaning the END of that day in China time")


def parse_time(text: str) -> datetime:
    """A time option's value (TIME_HELP): a bare date is the last instant of that China day,
    whatever the option (an as-of, a known-at, an expiry or a revocation)."""
    try:
        return clock.parse_instant(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO date or date-time") from None


def parse_day(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return clock.parse_day(text)
    except ValueError:
        fail(f"{option} {text!r} is not a date (YYYY-MM-DD)")


def subject_ref(text: str) -> SubjectRef:
    return parse_subject(text, today=today_in_china())


def json_object(option: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        fail(f"{option} is not JSON: {exc}")
    if not isinstance(value, dict):
        fail(f"{option} must be a JSON object")
    return value


def read_input(path: str | None) -> dict[str, Any]:
    """The optional ``--input FILE`` (``-`` for stdin): a JSON object of the command's fields."""
    if path is None:
        return {}
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    return json_object(f"--input {path}", text)


def field_changes(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--set FIELD=VALUE`` pairs: decision_date is a date, details a JSON object."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            fail(f"--set {pair!r} is not FIELD=VALUE")
        if name == "decision_date":
            changes[name] = parse_day("--set decision_date", value)
        elif name == "details":
            changes[name] = json_object("--set details", value)
        else:
            changes[name] = value
    return changes


as_option = click.option("--as", "actor", required=True, metavar="AUTHORITY",
                         help="The authority acting (its key signs the event).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
input_option = click.option("--input", "input_path", metavar="FILE",
                            help="A JSON object with the command's fields ('-' for stdin); "
                                 "flags override it.")
reader_option = click.option(
    "--as", "reader_text", default="public", show_default=True, metavar="READER",
    help="Who reads: public; an authority's code; auditor, court or agency (optionally "
         ":NAME); subject:KEY for one's own file. The role matrix decides what each sees "
         "(docs/PERMISSIONS.md); every read beyond the public file is written to the query log.")
purpose_option = click.option("--purpose", help="Why you read it: required for every read "
                                                "beyond the public file (it is logged).")
on_option = click.option("--on", "on", metavar="DATE",
                        help="The day the act takes effect (YYYY-MM-DD; default today, China "
                             "time); never after today, nor before what it answers.")
