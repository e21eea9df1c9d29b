"""Checkpoints, Merkle proofs and evidence exports over HTTP."""

from __future__ import annotations

import asyncio
import base64
import io
import tarfile
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel

from api.keys import Role
from api.problems import QUERY_ERRORS, Problem
from api.security import REGULATORS, require
from api.types import PositiveParam
from eventstore.recorder import HashChainRecorder
from replay.log import checkpoint_at, latest_checkpoint
from replay.tiles import TiledTree

EVIDENCE_READERS = frozenset({Role.OPERATOR, Role.AUDITOR, Role.REGULATOR, Role.ADMIN})
router = APIRouter(prefix="/v1", tags=["evidence"])
Reader = Depends(require(EVIDENCE_READERS))
Regulator = Depends(require(REGULATORS))
RESPONSES = QUERY_ERRORS


class CheckpointOut(BaseModel):
    size: int
    root_hex: str
    root_base64: str
    note: str
    key_name: str


class InclusionOut(BaseModel):
    position: int
    size: int
    leaf_hash: str
    proof: list[str]
    root: str


class ConsistencyOut(BaseModel):
    from_size: int
    to_size: int
    proof: list[str]
    from_root: str
    to_root: str


def _cp(c: Any) -> CheckpointOut:
    return CheckpointOut(
        size=c.size,
        root_hex=c.root.hex(),
        root_base64=base64.b64encode(c.root).decode(),
        note=c.note,
        key_name=c.key_name,
    )


def _recorder(request: Request) -> HashChainRecorder:
    return request.app.state.services.store.recorder  # type: ignore[no-any-return]


def _tree(request: Request) -> TiledTree:
    """The log's tree at its current size, read from the tiles (O(log n) of them per proof)."""
    return TiledTree.of_store(_recorder(request))


@router.get(
    "/checkpoints/latest",
    response_model=CheckpointOut,
    responses=RESPONSES,
    summary="The newest signed checkpoint (C2SP tlog-checkpoint note)",
)
async def latest(request: Request, _: Any = Reader) -> CheckpointOut:
    """The newest signed checkpoint: a C2SP tlog-checkpoint note (origin, tree size, root)
    signed by the log's key.
    """
    found = await asyncio.to_thread(latest_checkpoint, _recorder(request))
    if found is None:
        raise Problem(404, "checkpoint_not_found", "no checkpoint has been signed yet")
    return _cp(found)


@router.get(
    "/checkpoints/{size}",
    response_model=CheckpointOut,
    responses=RESPONSES,
    summary="The signed checkpoint of a tree size",
)
async def at_size(
    size: Annotated[PositiveParam, PathParam()], request: Request, _: Any = Reader
) -> CheckpointOut:
    """The signed checkpoint of one tree size, if one was signed at that size."""
    match = await asyncio.to_thread(checkpoint_at, _recorder(request), size)
    if match is None:
        raise Problem(404, "checkpoint_not_found", f"no checkpoint of size {size}", size=size)
    return _cp(match)


@router.get(
    "/proofs/inclusion",
    response_model=InclusionOut,
    responses=RESPONSES,
    summary="RFC 9162 inclusion proof of the event at a position in a tree size",
)
async def inclusion(
    request: Request,
    position: Annotated[PositiveParam, Query()],
    size: Annotated[PositiveParam, Query()],
    _: Any = Reader,
) -> InclusionOut:
    """An RFC 9162 inclusion proof of the event at `position` in the tree of `size` events
    (verify it against a checkpoint of that size).
    """

    def prove() -> InclusionOut:
        tree = _tree(request)
        if size > tree.size or position > size:
            raise Problem(
                422,
                "proof_out_of_range",
                f"need 1 <= position <= size <= {tree.size}",
                position=position,
                size=size,
            )
        proof = tree.inclusion_proof(position - 1, size)
        return InclusionOut(
            position=position,
            size=size,
            leaf_hash=tree.leaf(position - 1).hex(),
            proof=[h.hex() for h in proof],
            root=tree.root(size).hex(),
        )

    return await asyncio.to_thread(prove)


@router.get(
    "/proofs/consistency",
    response_model=ConsistencyOut,
    responses=RESPONSES,
    summary="RFC 9162 consistency proof between two tree sizes",
)
async def consistency(
    request: Request,
    from_size: Annotated[PositiveParam, Query(alias="from")],
    to_size: Annotated[PositiveParam, Query(alias="to")],
    _: Any = Reader,
) -> ConsistencyOut:
    """An RFC 9162 consistency proof from the tree of `from` events to the tree of `to` events:
    a verifier holding the first checkpoint checks the second extends it.
    """

    def prove() -> ConsistencyOut:
        tree = _tree(request)
        if not from_size <= to_size <= tree.size:
            raise Problem(422, "proof_out_of_range", f"need 1 <= from <= to <= {tree.size}")
        return ConsistencyOut(
            from_size=from_size,
            to_size=to_size,
            proof=[h.hex() for h in tree.consistency_proof(from_size, to_size)],
            from_root=tree.root(from_size).hex(),
            to_root=tree.root(to_size).hex(),
        )

    return await asyncio.to_thread(prove)


@router.get(
    "/exports",
    responses={
        200: {"content": {"application/gzip": {}}, "description": "the evidence bundle as .tar.gz"},
        **RESPONSES,
    },
    response_class=Response,
    summary="An evidence bundle (regulator role)",
)
async def export(
    request: Request,
    from_position: Annotated[PositiveParam, Query()] = 1,
    to_position: Annotated[PositiveParam | None, Query()] = None,
    trusted_size: Annotated[list[PositiveParam] | None, Query()] = None,
    _: Any = Regulator,
) -> Response:
    """A signed evidence bundle (`.tar.gz`) of positions `from_position`..`to_position`: events
    as Parquet, a signed manifest, the checkpoint, consistency proofs to the sizes you hold
    (`trusted_size`), and the ledger's reports over the range (trial balance, statements,
    large value, daily totals). Verify it offline with `replay/verifier.py`.
    """
    from replay import reports
    from replay.export import ExportError, export_bundle, export_range

    services = request.app.state.services
    key = services.extra.get("signing_key")
    if key is None:
        raise Problem(
            503,
            "signing_key_missing",
            "this server has no checkpoint signing key (keys signing-create)",
        )
    recorder = _recorder(request)

    def build() -> bytes:
        last = export_range(recorder.head().position, from_position, to_position)
        with services.store.datastore.get_connection() as conn:
            tables = reports.compute_range(conn, recorder, from_position, last)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "bundle"
            export_bundle(
                recorder,
                out,
                key,
                from_position=from_position,
                to_position=last,
                trusted_sizes=trusted_size or (),
                reports=tables,
            )
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                tar.add(out, arcname="bundle")
            return buffer.getvalue()

    try:
        data = await asyncio.to_thread(build)
    except ExportError as exc:
        raise Problem(422, "export_out_of_range", str(exc)) from None
    except reports.ReportError as exc:
        raise Problem(503, "read_model_behind", str(exc), headers={"Retry-After": "1"}) from None
    return Response(
        data,
        media_type="application/gzip",
        headers={"Content-Disposition": 'attachment; filename="evidence.tar.gz"'},
    )
