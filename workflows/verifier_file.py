"""The one-file offline verifier a court is handed: ``proofs/`` and what its imports reach.

Nothing here lists modules by hand: the folder ``proofs/`` is the list, and the walk over its
imports adds what it needs from ``domain/`` and ``keys/`` (and their package ``__init__`` files).
The architecture test and ``credit verifier --list`` use the same walk.
"""

from __future__ import annotations

import ast
import hashlib
import io
import sys
import zipfile
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


INTERPRETER = b"#!/usr/bin/env python3\n"
# Every entry is dated the same (the earliest time a zip can hold) and written in sorted order,
# so the same sources give the same bytes: a court can compare the file's SHA-256 with the one
# published in docs/VERIFYING.md.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
MAIN = ("# -*- coding: utf-8 -*-\nimport {module}\n{module}.{function}()\n")


def verifier_bytes(root: Path = ROOT) -> bytes:
    """The zipapp a court runs (``python3 credit-verify.pyz FILE --trust KEY.pem``), as bytes."""
    module, function = ENTRY_POINT.split(":")
    entries = {str(relative): (root / relative).read_bytes() for relative in verifier_files(root)}
    entries["__main__.py"] = MAIN.format(module=module, function=function).encode("utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[name], compresslevel=9)
    return INTERPRETER + buffer.getvalue()


def pack_verifier(output: Path, root: Path = ROOT) -> str:
    """Write the verifier to ``output``; return its SHA-256 (hex)."""
    data = verifier_bytes(root)
    output.write_bytes(data)
    output.chmod(0o755)
    return hashlib.sha256(data).hexdigest()


def publish_digest(document: Path, digest: str) -> bool:
    """Write the verifier's SHA-256 into the document between its markers (the release step,
    `make verifier`); whether the document changed."""
    text = document.read_text(encoding="utf-8")
    start, end = "<!-- verifier-sha256 -->", "<!-- /verifier-sha256 -->"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    updated = f"{head}{start}SHA-256 `{digest}`{end}{tail}"
    if updated != text:
        document.write_text(updated, encoding="utf-8")
    return updated != text


def published_digest(document: Path) -> str | None:
    text = document.read_text(encoding="utf-8")
    _, found, rest = text.partition("<!-- verifier-sha256 -->SHA-256 `")
    return rest.split("`", 1)[0] if found else None
