"""The witness's HTTP interface (c2sp.org/tlog-witness): ``POST /add-checkpoint``.

Definition
    The request body is the spec's (old size, consistency proof lines, an empty line, the
    signed checkpoint); a 200 answer is the witness's cosignature line. Refusals use the
    statuses the spec names (400, 403, 404, 409 with ``text/x.tlog.size``, 422), with a
    one-line plain-text reason.

Guarantees
    No authentication, as the spec says: only the log's signature on the checkpoint counts.
    The app holds no database and no Ledgerline state beyond the witness's own directory.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import Response

from replay.witness import WitnessService

MAX_BODY_BYTES = 64 * 1024  # 63 proof lines and a note with a few post-quantum signatures


def create_witness_app(service: WitnessService) -> FastAPI:
    app = FastAPI(title=f"Ledgerline witness {service.name}", version="0.1.0")

    @app.post("/add-checkpoint", summary="Cosign a checkpoint consistent with the last one")
    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return Response("request too large\n", status_code=413, media_type="text/plain")
        answer = await asyncio.to_thread(service.add_checkpoint, body)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    @app.get("/healthz", summary="The witness is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "witness": service.verifier_key.encode()}

    return app
