"""The ledger's only reach into the event-sourcing libraries' private parts fails loudly when they
change (ledger/library_seams.py)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from eventsourcing.application import Application

from ledger import library_seams
from ledger.application import CreditLedger

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_libraries_are_the_versions_the_seams_were_checked_against() -> None:
    assert library_seams.unchecked_versions() == {}, (
        "eventsourcing or eventsourcing-sqlalchemy changed version: read its private parts that "
        "ledger/library_seams.py uses, then widen CHECKED_VERSIONS")


def test_every_private_part_used_still_exists_with_the_same_parameters() -> None:
    for cls, name in library_seams.PRIVATE_PARTS:
        method = getattr(cls, name, None)
        assert callable(method), f"{cls.__name__}.{name} is gone"
        assert list(inspect.signature(method).parameters) == ["self", "session"], (
            f"{cls.__name__}.{name} takes other parameters now")


def test_no_other_module_calls_a_private_method_of_the_libraries() -> None:
    library_private = {name for _, name in library_seams.PRIVATE_PARTS} | {
        name for name in vars(Application) if name.startswith("_") and not name.startswith("__")}
    for path in ROOT.glob("*/*.py"):
        if path.parts[-2] in ("tests", ".venv") or path.name == "library_seams.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in library_private:
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno} uses {node.attr}")
            if isinstance(node, ast.FunctionDef) and node.name in library_private:
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno} overrides "
                                     f"{node.name}")


def test_saving_skips_nothing_the_library_would_do() -> None:
    # CreditLedger.save puts events through the public EventStore.put. The library's save also
    # takes snapshots and notifies: the ledger must have neither configured, or it would skip them.
    assert not CreditLedger.snapshotting_intervals
    assert not getattr(CreditLedger, "is_snapshotting_enabled", False)
    assert CreditLedger._notify is Application._notify
    assert CreditLedger.notify is Application.notify
