"""The log served as C2SP tiles, checked over HTTP by a client that knows only the specs.

Everything under "An independent tlog-tiles client" is written from c2sp.org/tlog-tiles,
c2sp.org/tlog-checkpoint, c2sp.org/signed-note and RFC 9162 alone: it imports the standard
library and ``cryptography`` (for Ed25519), never Ledgerline, so it stands for any
C2SP-compatible auditor (Go's sumdb/tlog, Sunlight, Tessera tooling).
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from commands.ledger import CreateTransfer, transfer_command
from replay.log import make_checkpoint, origin
from replay.verifier import format_verifier_key
from tests.e2e.conftest import Server
from tests.e2e.test_ledger_api import account, assert_problem

# ---------------------------------------------------------- An independent tlog-tiles client

Fetch = Callable[[str], bytes]


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return _sha(b"\x01" + left + right)


def spec_tile_path(level: int | str, index: int, width: int) -> str:
    """tile/<L>/<N>[.p/<W>], N in zero-padded 3-digit elements, all but the last 'x'-prefixed."""
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.insert(0, f"x{index % 1000:03d}")
        index //= 1000
    path = f"tile/{level}/{'/'.join(groups)}"
    return path if width == 256 else f"{path}.p/{width}"


def open_checkpoint(note: str, vkey: str) -> tuple[str, int, bytes]:
    """Verify the Ed25519 (type 0x01) signature of ``vkey`` on a checkpoint note."""
    name, key_hash, key_b64 = vkey.split("+", 2)
    blob = base64.b64decode(key_b64)
    assert blob[0] == 0x01
    key_id = _sha(name.encode() + b"\n" + blob)[:4]
    assert key_id.hex() == key_hash
    text, _, signatures = note.rpartition("\n\n")
    text += "\n"
    good = 0
    for line in signatures.splitlines():
        assert line.startswith("\u2014 ")
        signer, _, sig_b64 = line[2:].partition(" ")
        sig = base64.b64decode(sig_b64)
        if signer == name and sig[:4] == key_id:
            Ed25519PublicKey.from_public_bytes(blob[1:]).verify(sig[4:], text.encode())
            good += 1
    assert good >= 1
    lines = text.splitlines()
    return lines[0], int(lines[1]), base64.b64decode(lines[2])


class TileClient:
    """Reads hashes of a tree of ``size`` leaves from its tiles (at most one fetch per tile)."""

    def __init__(self, fetch: Fetch, size: int) -> None:
        self.fetch = fetch
        self.size = size
        self.tiles: dict[tuple[int, int], list[bytes]] = {}

    def tile(self, level: int, index: int) -> list[bytes]:
        width = min(256, (self.size >> (8 * level)) - 256 * index)
        assert width > 0
        if (level, index) not in self.tiles:
            data = self.fetch(spec_tile_path(level, index, width))
            assert len(data) == 32 * width
            self.tiles[level, index] = [data[i : i + 32] for i in range(0, len(data), 32)]
        return self.tiles[level, index]

    def subtree(self, start: int, height: int) -> bytes:
        """MTH(D[start : start + 2**height]) for an aligned, complete subtree."""
        level, rest = divmod(height, 8)
        first = start >> (8 * level)
        hashes = self.tile(level, first >> 8)[first % 256 : first % 256 + (1 << rest)]
        while len(hashes) > 1:
            hashes = [_node(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        return hashes[0]

    def mth(self, start: int, end: int) -> bytes:
        """RFC 9162 MTH of D[start:end], a node of the tree (right-folded decomposition)."""
        parts = []
        offset = start
        for h in range((end - start).bit_length() - 1, -1, -1):
            if (end - start) >> h & 1:
                parts.append(self.subtree(offset, h))
                offset += 1 << h
        result = parts[-1]
        for left in reversed(parts[:-1]):
            result = _node(left, result)
        return result

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        """RFC 9162 PATH(m, D[start:end])."""
        n = end - start
        if n == 1:
            return []
        k = 1 << ((n - 1).bit_length() - 1)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        """RFC 9162 SUBPROOF(m, D[start:end], b)."""
        n = end - start
        if m == n:
            return [] if complete else [self.mth(start, end)]
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            return [*self.subproof(m, start, start + k, complete), self.mth(start + k, end)]
        return [*self.subproof(m - k, start + k, end, False), self.mth(start, start + k)]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(m: int, n: int, proof: list[bytes], first: bytes, second: bytes) -> bool:
    """RFC 9162 section 2.1.4.2 (0 < m < n)."""
    if not proof:
        return False
    path = [first, *proof] if m & (m - 1) == 0 else list(proof)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first and sr == second


def entries(bundle: bytes) -> list[bytes]:
    """An entry bundle: big-endian uint16 length-prefixed entries."""
    out, offset = [], 0
    while offset < len(bundle):
        length = int.from_bytes(bundle[offset : offset + 2], "big")
        out.append(bundle[offset + 2 : offset + 2 + length])
        offset += 2 + length
    assert offset == len(bundle)
    return out


# ------------------------------------------------------------------ the tests


def _transfers(server: Server, count: int, first_id: int = 1000) -> None:
    processor = server.runtime.processor
    rng = random.Random(first_id)
    for n in range(count):
        debit, credit = rng.sample([1, 2, 3], 2)
        command = transfer_command(
            CreateTransfer(
                id=first_id + n, debit_account_id=debit, credit_account_id=credit, amount="1.00",
                ledger=1, code=1,
            )
        )  # fmt: skip
        assert processor.execute(command).accepted


def test_any_tlog_client_audits_the_log_from_its_tiles_without_ledgerline(server: Server) -> None:
    with server.client() as c:
        for a in (1, 2, 3):
            account(c, a)
    _transfers(server, 110)  # 333 events: a full and a partial level-0 tile, a level-1 tile
    key = server.runtime.app.state.services.extra["signing_key"]
    vkey = format_verifier_key(origin(), key.public_key())
    held = make_checkpoint(server.runtime.store.recorder, key)
    _transfers(server, 30, first_id=5000)
    make_checkpoint(server.runtime.store.recorder, key)

    public = httpx.Client(base_url=server.url + "/log/", timeout=30)  # no credentials at all
    fetched: list[str] = []

    def fetch(path: str) -> bytes:
        fetched.append(path)
        r = public.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-type"] == "application/octet-stream"
        assert "immutable" in r.headers["cache-control"]
        return r.content

    r = public.get("checkpoint")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "max-age=5" in r.headers["cache-control"]
    log_origin, size, root = open_checkpoint(r.text, vkey)
    assert log_origin == origin() and size == server.runtime.store.recorder.head().position

    tree = TileClient(fetch, size)
    assert tree.mth(0, size) == root
    # Every entry hashes to its level-0 tile hash, bundle by bundle.
    for index in range((size + 255) // 256):
        width = min(256, size - 256 * index)
        leaves = [
            _sha(b"\x00" + e) for e in entries(fetch(spec_tile_path("entries", index, width)))
        ]
        assert leaves == tree.tile(0, index)
    # Inclusion of some entries, proven from tiles alone, and the server's own proof agrees.
    auditor = server.client("auditor")
    for index in (0, 255, 256, size - 1):
        proof = tree.path(index, 0, size)
        assert verify_inclusion(tree.subtree(index, 0), index, size, proof, root)
        served = auditor.get(
            "/v1/proofs/inclusion", params={"position": index + 1, "size": size}
        ).json()
        assert served["proof"] == [h.hex() for h in proof]
        assert served["root"] == root.hex()
    # The older checkpoint a regulator holds is a prefix of the current tree.
    _, old_size, old_root = open_checkpoint(held.note, vkey)
    old_tree = TileClient(fetch, old_size)
    assert old_tree.mth(0, old_size) == old_root
    proof = tree.subproof(old_size, 0, size, True)
    assert verify_consistency(old_size, size, proof, old_root, root)
    served = auditor.get("/v1/proofs/consistency", params={"from": old_size, "to": size}).json()
    assert served["proof"] == [h.hex() for h in proof]
    assert any(".p/" in p for p in fetched) and "tile/1/000.p/1" in fetched


def test_tiles_that_do_not_exist_or_are_misnamed_are_refused(server: Server) -> None:
    with server.client() as c:
        for a in (1, 2, 3):
            account(c, a)
    public = httpx.Client(base_url=server.url + "/log/", timeout=30)
    assert_problem(public.get("checkpoint"), 404, "checkpoint_not_found")
    assert public.get("tile/0/000.p/3").status_code == 200
    assert public.get("tile/entries/000.p/3").status_code == 200
    assert_problem(public.get("tile/0/000.p/4"), 404, "tile_not_found")  # only 3 events
    assert_problem(public.get("tile/0/000"), 404, "tile_not_found")
    assert_problem(public.get("tile/1/000.p/1"), 404, "tile_not_found")
    for bad in ("tile/0/1", "tile/0/x000/001", "tile/00/000", "tile/0/000.p/0", "tile/0/000.p/256",
                "tile/0/000.p/03", "tile/64/000", "tile/entries", "tile/0/abc"):  # fmt: skip
        assert_problem(public.get(bad), 422, "invalid_request")  # the OpenAPI pattern says so
    assert_problem(public.get("tile/0/x999/x999/x999/x999/x999/x999/999"), 404, "tile_not_found")
    assert public.post("tile/0/000.p/3").status_code == 405  # read-only
