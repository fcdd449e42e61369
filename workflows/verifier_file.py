"""The one-file offline verifier a court is handed: ``proofs/`` and what its imports reach.

Nothing here lists modules by hand: the folder ``proofs/`` is the list, and the walk over its
imports adds what it needs from ``domain/`` and ``keys/`` (and their package ``__init__`` files).
The architecture test and ``credit verifier --list`` use the same walk.
"""

from __future__ import annotations

import ast
import shutil
import sys
import tempfile
import zipapp
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "proofs"
ENTRY_POINT = "proofs.verify_extract:command"


def imported_names(path: Path) -> set[str]:
    """Every absolute module name a file imports (``from a import b`` gives ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """This repository's file for a module name, or None when it is not ours."""
    parts = name.split(".")
    if not (root / parts[0] / "__init__.py").exists():
        return None
    as_module = root.joinpath(*parts).with_suffix(".py")
    if as_module.exists():
        return as_module
    as_package = root.joinpath(*parts, "__init__.py")
    return as_package if as_package.exists() else None


def verifier_files(root: Path = ROOT) -> list[Path]:
    """Every file of ours the verifier runs: the kernel folder, then what its imports reach,
    with the ``__init__.py`` of every package on the way (sorted, relative to ``root``)."""
    pending = sorted((root / KERNEL).glob("*.py"))
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        package_init = path.parent / "__init__.py"
        if package_init.exists():
            pending.append(package_init)
        for name in imported_names(path):
            found = module_file(name, root)
            if found is not None and found not in seen:
                pending.append(found)
    return sorted(p.relative_to(root) for p in seen)


def third_party_imports(root: Path = ROOT) -> dict[str, set[str]]:
    """For each verifier file, what it imports that is neither ours nor the standard library."""
    outside: dict[str, set[str]] = {}
    for relative in verifier_files(root):
        for name in imported_names(root / relative):
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and module_file(top, root) is None:
                outside.setdefault(str(relative), set()).add(top)
    return outside


def pack_verifier(output: Path, root: Path = ROOT) -> list[Path]:
    """Write the zipapp a court runs: ``python3 credit-verify.pyz FILE --trust KEY.pem``."""
    files = verifier_files(root)
    with tempfile.TemporaryDirectory() as folder:
        for relative in files:
            target = Path(folder) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / relative, target)
        zipapp.create_archive(folder, output, interpreter="/usr/bin/env python3",
                              main=ENTRY_POINT, compressed=True)
    return files
