"""Issued reports kept for the printable page and the download, and the QR code that ties a
paper copy to its signed file."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import qrcode
import qrcode.image.svg

from workflows.extracts import signed_payload
from workflows.session import Settings

NUMBER = re.compile(r"^[A-Za-z0-9-]{1,80}$")


@dataclass(frozen=True)
class ReportStore:
    """A folder of issued report files by number (``CREDIT_REPORTS_DIR``, else ``reports``
    beside the key folder): every worker process of the window finds what another issued."""

    folder: Path

    @classmethod
    def of(cls, settings: Settings) -> ReportStore:
        configured = os.environ.get("CREDIT_REPORTS_DIR")
        return cls(Path(configured) if configured else settings.keys_dir.parent / "reports")

    def keep(self, number: str, data: bytes) -> Path:
        if not NUMBER.match(number):
            raise ValueError(f"not a report number: {number!r}")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{number}.json"
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(path)  # whole or absent, for a worker reading it meanwhile
        return path

    def find(self, number: str) -> Path | None:
        if not NUMBER.match(number):
            return None
        path = self.folder / f"{number}.json"
        return path if path.is_file() else None

    @staticmethod
    def payload(path: Path) -> dict[str, Any]:
        """What the signed file says (it was issued here; the verify page checks any file)."""
        return signed_payload(path.read_bytes())

    @staticmethod
    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()


def qr_svg(text: str) -> str:
    """``text`` as a QR code, an inline SVG element (no image file, no script)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8,
                        border=2)
    svg = image.to_string(encoding="unicode")
    return re.sub(r"^<\?xml[^>]*>\s*", "", svg)
