"""The log served as C2SP tlog-tiles, read by a client written from the spec alone
(https://c2sp.org/tlog-tiles, RFC 6962 §2.1, RFC 9162 §2.1.3.2, https://c2sp.org/signed-note):
nothing here imports the platform's proofs. It fetches the checkpoint and checks its Ed25519
signature against the platform's published key, rebuilds the root from the tiles (levels above
0 where they are full), checks every entry bundle against its level-0 tile, and proves an
event's inclusion from tiles only. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from flask.testing import FlaskClient

from ledger.settings import Settings
from tests.web.test_api import events

Fetch = Callable[[str], bytes]


def _hash(prefix: bytes, *parts: bytes) -> bytes:
    return hashlib.sha256(prefix + b"".join(parts)).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _path_index(n: int) -> str:
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


class SpecClient:
    """A tlog-tiles client for a tree of ``size`` entries, from the spec's text only."""

    def __init__(self, fetch: Fetch, size: int) -> None:
        self.fetch, self.size = fetch, size
        self.tiles: dict[tuple[int, int], list[bytes]] = {}

    def tile(self, level: int, n: int) -> list[bytes]:
        """Tile ``n`` of ``level`` as the tree of ``size`` has it: full, or partial of width
        floor(s / 256**l) mod 256."""
        if (level, n) not in self.tiles:
            hashes_at_level = self.size // 256 ** level
            full = (n + 1) * 256 <= hashes_at_level
            width = 256 if full else hashes_at_level % 256
            assert width > 0, "an empty tile is never fetched"
            path = f"tile/{level}/{_path_index(n)}" + ("" if full else f".p/{width}")
            body = self.fetch(path)
            assert len(body) == 32 * width, (path, len(body))
            self.tiles[(level, n)] = [body[i:i + 32] for i in range(0, len(body), 32)]
        return self.tiles[(level, n)]

    def node(self, height: int, k: int) -> bytes:
        """MTH of the perfect subtree of 2**height entries starting at k * 2**height."""
        level, rest = divmod(height, 8)
        first = k << rest  # the first of its 2**rest hashes at tree height 8 * level
        hashes = [self.tile(level, (first + i) // 256)[(first + i) % 256]
                  for i in range(1 << rest)]
        while len(hashes) > 1:  # the levels between tile levels: hashed from the tile
            hashes = [_hash(b"\x01", hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        return hashes[0]

    def mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            return self.node(n.bit_length() - 1, lo // n)
        k = _split(n)
        return _hash(b"\x01", self.mth(lo, lo + k), self.mth(lo + k, hi))

    def inclusion(self, m: int, lo: int = 0, hi: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.1 PATH(m, D[lo:hi])."""
        hi = self.size if hi is None else hi
        n = hi - lo
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self.inclusion(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.inclusion(m - k, lo + k, hi), self.mth(lo, lo + k)]


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = _hash(b"\x01", p, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _hash(b"\x01", r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def read_checkpoint(note: str, key: Ed25519PublicKey) -> tuple[str, int, bytes]:
    """A signed note: text, a blank line, signature lines "— name base64(keyid || sig)"."""
    text, _, signatures = note.partition("\n\n")
    lines = (text + "\n").splitlines()
    checked = False
    for line in signatures.splitlines():
        _, name, blob = line.split(" ")
        raw = base64.b64decode(blob)
        key_id = hashlib.sha256(name.encode() + b"\n\x01" + key.public_bytes_raw()).digest()[:4]
        if raw[:4] == key_id:
            key.verify(raw[4:], (text + "\n").encode())  # raises if it does not verify
            checked = True
    assert checked, "no signature by the platform's key"
    return lines[0], int(lines[1]), base64.b64decode(lines[2])


@pytest.fixture
def fetch(client: FlaskClient) -> Fetch:
    def get(path: str) -> bytes:
        response = client.get(f"/log/{path}")
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data()
    return get


def test_a_spec_client_reads_the_log_and_proves_an_inclusion(client: FlaskClient, city: Settings,
                                                            fetch: Fetch) -> None:
    key = load_pem_public_key(client.get("/transparency/platform.pem").get_data())
    assert isinstance(key, Ed25519PublicKey)
    response = client.get("/log/checkpoint")
    assert response.content_type == "text/plain; charset=utf-8"
    assert "max-age" in response.headers["Cache-Control"]
    origin, size, root = read_checkpoint(response.get_data(as_text=True), key)
    assert origin == "credit-ledger.linan/log" and size == events(city) and size > 256
    spec = SpecClient(fetch, size)
    assert spec.mth(0, size) == root  # the tiles hold the tree the checkpoint signs
    assert (1, 0) in spec.tiles  # … read through a level-1 tile where it could be
    bundles = (size + 255) // 256
    level0 = [h for n in range(bundles) for h in spec.tile(0, n)]
    entries: list[bytes] = []
    for n in range(bundles):
        full = (n + 1) * 256 <= size
        body = fetch(f"tile/entries/{_path_index(n)}" + ("" if full else f".p/{size % 256}"))
        while body:
            length = int.from_bytes(body[:2], "big")
            entries.append(body[2:2 + length])
            body = body[2 + length:]
    assert [_hash(b"\x00", e) for e in entries] == level0  # every entry hashes to its leaf
    chosen = next(i for i, e in enumerate(entries) if b"CreditRecord.Submitted" in e)
    proof = spec.inclusion(chosen)
    assert verify_inclusion(chosen, size, level0[chosen], proof, root)
    assert not verify_inclusion(chosen, size, _hash(b"\x00", entries[chosen] + b" "), proof, root)


def test_tiles_are_cacheable_and_only_what_the_spec_names_is_served(client: FlaskClient,
                                                                    city: Settings) -> None:
    size = events(city)
    full = client.get("/log/tile/0/000")
    assert full.status_code == 200 and len(full.get_data()) == 8192
    assert "immutable" in full.headers["Cache-Control"]
    partial = client.get("/log/tile/0/000.p/7")
    assert partial.get_data() == full.get_data()[:7 * 32]  # a partial tile is its full one's prefix
    for bad in ("0/0", "0/00", "0/x000/001", "00/000", "64/000", "0/000.p/0", "0/000.p/256",
                "0/000.p/07", "0/x001", "entries/0", "0/abc"):
        assert client.get(f"/log/tile/{bad}").status_code == 404, bad
    beyond = size // 256 + 1
    assert client.get(f"/log/tile/0/{_path_index(beyond)}").status_code == 404
    assert client.get(f"/log/tile/entries/{_path_index(beyond)}").status_code == 404
    assert client.get("/log/tile/1/000").status_code == 404  # 65,536 entries it has not
