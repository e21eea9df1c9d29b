"""The log served as a C2SP tiled transparency log (c2sp.org/tlog-tiles), read-only.

Definition
    ``GET /log/checkpoint``                 the newest signed checkpoint with the witnesses'
                                            cosignatures (``text/plain; charset=utf-8``)
    ``GET /log/tile/<L>/<N>[.p/<W>]``       a Merkle tile: ``W`` (default 256) hashes
    ``GET /log/tile/entries/<N>[.p/<W>]``   an entry bundle: each event's canonical ``evt/v1``
                                            bytes, prefixed by their length (big-endian uint16)

    ``<N>`` is written in 3-digit groups, all but the last prefixed with ``x``
    (1234067 -> ``x001/x234/067``). With ``https://host/log/`` as the prefix and the log's
    origin and verifier key, any tlog-tiles client (Go's ``sumdb/tlog``, Sunlight, Tessera
    tooling) can fetch tiles and check inclusion and consistency itself.

Guarantees
    * No authentication: the log is public evidence, like a Certificate Transparency log;
      these routes read only and reveal only what a regulator's bundle would (put a proxy in
      front to restrict them).
    * Tiles and bundles never change once they exist (a partial tile of width ``W`` is the
      tile of every tree size that ends there), so they are served with
      ``Cache-Control: public, max-age=31536000, immutable``; the checkpoint with
      ``max-age=5``. A tile beyond the log's size is 404.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from api.problems import Problem, problem_responses
from eventstore.recorder import HashChainRecorder
from replay.log import latest_checkpoint, published
from replay.tiles import EntryTooLarge, TileNotFound, entry_bundle, parse_tile_index, tile_data

router = APIRouter(prefix="/log", tags=["transparency log"])
IMMUTABLE = "public, max-age=31536000, immutable"
CHECKPOINT_CACHE = "public, max-age=5"
OCTETS = "application/octet-stream"
RESPONSES: dict[int | str, dict[str, Any]] = problem_responses(404, 422)
# The path after tile/: a level (0-63) or "entries"; the index in 3-digit groups, all but the
# last with an "x" (no leading x000); an optional partial width 1-255. The OpenAPI schema states
# it, so a client knows a malformed path before asking (422); parse_tile_path agrees with it.
TILE_PATH_PATTERN = (
    r"^(entries|[0-9]|[1-5][0-9]|6[0-3])/"
    r"(x(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2})/(x[0-9]{3}/)*)?[0-9]{3}"
    r"(\.p/([1-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5]))?$"
)


def _recorder(request: Request) -> HashChainRecorder:
    return request.app.state.services.store.recorder  # type: ignore[no-any-return]


@router.get(
    "/checkpoint",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **RESPONSES},
    summary="The newest checkpoint, with the witnesses' cosignatures (C2SP signed note)",
)
async def log_checkpoint(request: Request) -> Response:
    """The newest signed checkpoint as a C2SP signed note (``text/plain``): origin, tree size
    and root, the log's signature lines (Ed25519, ML-DSA-65) and the witnesses' cosignatures.
    Public, like a transparency log's: no token needed. Cached for at most 5 seconds.
    """
    recorder = _recorder(request)

    def read() -> str | None:
        found = latest_checkpoint(recorder)
        return None if found is None else published(recorder, found)

    note = await asyncio.to_thread(read)
    if note is None:
        raise Problem(404, "checkpoint_not_found", "no checkpoint has been signed yet")
    return Response(
        note,
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": CHECKPOINT_CACHE},
    )


def parse_tile_path(path: str) -> tuple[int | None, int, int | None]:
    """``<L>/<N>[.p/<W>]`` or ``entries/<N>[.p/<W>]`` -> (level or None, index, width or None)."""
    parts = path.split("/")
    if len(parts) < 2:
        raise ValueError("a tile path is <L>/<N>[.p/<W>] or entries/<N>[.p/<W>]")
    head, rest = parts[0], parts[1:]
    width: int | None = None
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        width_text = rest[-1]
        if not width_text.isascii() or not width_text.isdigit() or width_text.startswith("0"):
            raise ValueError(f"partial width {width_text!r} is not a decimal without leading 0")
        width = int(width_text)
        if not 1 <= width <= 255:
            raise ValueError(f"partial width {width} is not between 1 and 255")
        rest = [*rest[:-2], rest[-2].removesuffix(".p")]
    index = parse_tile_index(rest)
    if head == "entries":
        return None, index, width
    if not head.isascii() or not head.isdigit() or (head != "0" and head.startswith("0")):
        raise ValueError(f"tile level {head!r} is not a decimal without leading zeros")
    level = int(head)
    if level > 63:
        raise ValueError(f"tile level {level} is beyond 63")
    return level, index, width


@router.get(
    "/tile/{path:path}",
    response_class=Response,
    responses={200: {"content": {OCTETS: {}}}, **RESPONSES},
    summary="A Merkle tile (tile/<L>/<N>[.p/<W>]) or entry bundle (tile/entries/<N>[.p/<W>])",
)
async def log_tile(
    path: Annotated[str, Path(pattern=TILE_PATH_PATTERN, max_length=200)], request: Request
) -> Response:
    """A C2SP tile: ``<L>/<N>[.p/<W>]`` returns the ``W`` (default 256) concatenated 32-byte
    hashes of tile ``N`` of level ``L``; ``entries/<N>[.p/<W>]`` the entry bundle, each event's
    canonical ``evt/v1`` bytes behind a big-endian uint16 length. ``N`` is written in 3-digit
    groups, all but the last prefixed with ``x`` (1234067 -> ``x001/x234/067``). Public, and
    immutable once it exists (cached for a year); a tile beyond the log is 404.
    """
    try:
        level, index, width = parse_tile_path(path)
    except ValueError as exc:
        raise Problem(422, "invalid_tile_path", f"tile/{path}: {exc}", path=path) from None
    recorder = _recorder(request)
    try:
        if level is None:
            data = await asyncio.to_thread(entry_bundle, recorder, index, width)
        else:
            data = await asyncio.to_thread(tile_data, recorder, level, index, width)
    except TileNotFound as exc:
        raise Problem(404, "tile_not_found", f"tile/{path}: {exc}", path=path) from None
    except EntryTooLarge as exc:
        raise Problem(422, "entry_too_large", f"tile/{path}: {exc}", path=path) from None
    return Response(data, media_type=OCTETS, headers={"Cache-Control": IMMUTABLE})
