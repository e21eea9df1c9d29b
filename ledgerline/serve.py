"""``ledgerline serve``: the HTTP API plus, without Kafka, the in-process projector."""

from __future__ import annotations

import errno
import socket

from ledgerline.config import Settings
from ledgerline.errors import LedgerlineError


class PortInUse(LedgerlineError):
    pass


def check_port_free(host: str, port: int) -> None:
    """Fail with one line before starting anything if ``host:port`` cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise LedgerlineError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"cannot listen on {host}:{port}: the port is already in use"
                ) from None
            raise LedgerlineError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def serve(url: str, settings: Settings) -> int:
    import uvicorn

    from ledgerline.runtime import build_runtime

    check_port_free(settings.host, settings.port)
    runtime = build_runtime(url, in_process_projection=not settings.kafka_bootstrap_servers)
    try:
        config = uvicorn.Config(
            runtime.app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        print(f"ledgerline: serving on http://{settings.host}:{settings.port}", flush=True)
        server.run()
    finally:
        runtime.close()
    return 0
