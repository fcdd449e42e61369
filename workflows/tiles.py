"""The log as C2SP tlog-tiles (https://c2sp.org/tlog-tiles): the latest signed checkpoint, the
Merkle tree as tiles of 256 hashes, and the events as entry bundles, read from what the ledger
stores (``ledger_log``, ``ledger_tree``, the events). Anyone can fetch them and compute any
inclusion or consistency proof without asking the platform for one (docs/FORMAT.md §11).

Only what the latest checkpoint covers is served: a tile or bundle reaching past its tree size
is not there yet (None). Full tiles never change; a partial one is the prefix of its full tile."""

from __future__ import annotations

import re

from sqlalchemy import select

from ledger import tables
from ledger.application import CreditLedger
from proofs.checks import oid_text
from proofs.envelope import leaf_bytes

WIDTH = 256  # hashes in a full tile, entries in a full bundle
HEIGHT = 8  # tree levels a tile spans: a tile of level L holds tree nodes of level 8·L
MAX_ENTRY = 0xFFFF  # an entry bundle prefixes each entry with a big-endian uint16 length
_ELEMENT = re.compile(r"^(x?)(\d{3})$")


class TileRefused(ValueError):
    """A tile path that is not one of the spec's (HTTP 404)."""


def parse_index(elements: list[str]) -> tuple[int, int | None]:
    """``x001/x234/067`` → 1234067, and ``.p/<W>`` → the width of a partial tile (else None).
    Only the canonical spelling is accepted: 3-digit elements, all but the last with ``x``, no
    leading zero element, W from 1 to 255 without leading zeros."""
    width: int | None = None
    if len(elements) >= 2 and elements[-2].endswith(".p"):
        text = elements[-1]
        if not re.fullmatch(r"[1-9]\d{0,2}", text) or int(text) >= WIDTH:
            raise TileRefused(f"{text!r} is not a partial tile's width (1 to 255)")
        width = int(text)
        elements = [*elements[:-2], elements[-2][:-2]]
    if not elements or len(elements) > 7:
        raise TileRefused("no tile index")
    index = 0
    for position, element in enumerate(elements):
        found = _ELEMENT.match(element)
        last = position == len(elements) - 1
        if found is None or (found.group(1) == "x") == last:
            raise TileRefused(f"{element!r} is not an index element (x000 … x999, then 000 … 999)")
        if position == 0 and len(elements) > 1 and found.group(2) == "000":
            raise TileRefused("an index has no leading zero element")
        index = index * 1000 + int(found.group(2))
    return index, width


def format_index(index: int) -> str:
    """The path of a tile index: 1234067 → ``x001/x234/067``."""
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


class LogTiles:
    def __init__(self, ledger: CreditLedger) -> None:
        self.ledger = ledger

    def checkpoint(self) -> tuple[int, str] | None:
        """(tree size, note) of the latest signed checkpoint, or None before the first."""
        c = tables.checkpoints
        with self.ledger.engine.connect() as conn:
            row = conn.execute(select(c.c.tree_size, c.c.note).order_by(c.c.seq.desc())
                               .limit(1)).first()
        return None if row is None else (int(row[0]), str(row[1]))

    def _span(self, level: int, index: int, width: int | None) -> tuple[int, int] | None:
        """(first node index at tree level 8·level, how many) if the latest checkpoint covers
        the tile, else None."""
        latest = self.checkpoint()
        if latest is None or not 0 <= level <= 63:
            return None
        size = latest[0]
        count = WIDTH if width is None else width
        first = index * WIDTH
        if (first + count) * WIDTH ** level > size:
            return None
        return first, count

    def tile(self, level: int, index: int, width: int | None) -> bytes | None:
        """The hashes of tile ``level``/``index`` (``width`` of them for a partial tile)."""
        span = self._span(level, index, width)
        if span is None:
            return None
        first, count = span
        with self.ledger.engine.connect() as conn:
            if level == 0:
                rows = conn.execute(select(tables.log.c.position, tables.log.c.leaf_hash).where(
                    tables.log.c.position >= first, tables.log.c.position < first + count)
                    .order_by(tables.log.c.position)).all()
            else:
                t = tables.tree
                rows = conn.execute(select(t.c.idx, t.c.hash).where(
                    t.c.level == HEIGHT * level, t.c.idx >= first, t.c.idx < first + count)
                    .order_by(t.c.idx)).all()
        if [int(i) for i, _ in rows] != list(range(first, first + count)):
            raise LookupError(f"the stored tree lacks nodes of tile {level}/{index}")
        return b"".join(bytes(h) for _, h in rows)

    def entries(self, index: int, width: int | None) -> bytes | None:
        """The entry bundle ``index``: each event's leaf bytes (FORMAT.md §3) after its length
        as a big-endian uint16, in log order."""
        span = self._span(0, index, width)
        if span is None:
            return None
        first, count = span
        events = self.ledger.recorder.events_table
        log = tables.log
        with self.ledger.engine.connect() as conn:
            rows = conn.execute(
                select(log.c.position, events.c.originator_id, events.c.originator_version,
                       events.c.topic, events.c.state)
                .join(events, events.c.id == log.c.notification_id)
                .where(log.c.position >= first, log.c.position < first + count)
                .order_by(log.c.position)).all()
        if [int(r[0]) for r in rows] != list(range(first, first + count)):
            raise LookupError(f"the store lacks events of bundle {index}")
        out = bytearray()
        for _, oid, version, topic, state in rows:
            entry = leaf_bytes(oid_text(oid), int(version), str(topic), bytes(state))
            if len(entry) > MAX_ENTRY:
                raise LookupError(f"an event of bundle {index} is longer than an entry can be")
            out += len(entry).to_bytes(2, "big") + entry
        return bytes(out)

    def resource(self, path: str) -> bytes | None:
        """The bytes of a tlog-tiles path under the prefix (``checkpoint``, ``tile/0/x001/234``,
        ``tile/entries/005.p/7``); None if the log does not hold it yet; TileRefused for a path
        the spec does not name."""
        if path == "checkpoint":
            latest = self.checkpoint()
            return None if latest is None else latest[1].encode("utf-8")
        elements = path.split("/")
        if len(elements) < 3 or elements[0] != "tile":
            raise TileRefused(f"{path!r} is not a tlog-tiles path")
        if elements[1] == "entries":
            index, width = parse_index(elements[2:])
            return self.entries(index, width)
        level = elements[1]
        if not level.isdigit() or (len(level) > 1 and level[0] == "0") or int(level) > 63:
            raise TileRefused(f"{level!r} is not a tile level (0 to 63)")
        index, width = parse_index(elements[2:])
        return self.tile(int(level), index, width)
