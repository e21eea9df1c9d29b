"""``ledgerline serve``: the HTTP API plus, without Kafka, the projector (its own process)."""

from __future__ import annotations

import errno
import os
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.metrics import MULTIPROCESS_ENV, multiprocess
from ledgerline.config import Settings
from ledgerline.database import DatabaseUrls
from ledgerline.errors import LedgerlineError

if TYPE_CHECKING:
    from ledgerline.projector_process import ProjectorProcess


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


WORKER_URL_ENV = "LEDGERLINE_WORKER_DATABASE_URL"


def ensure_signing_key(settings: Settings) -> Any:
    """The checkpoint signing key, made on the first ``serve`` or ``demo`` of a data dir.

    Protection is the default: without a key, the hash chains are unkeyed between
    checkpoints. A key named by ``LEDGERLINE_SIGNING_KEY`` must exist (a missing secret is a
    mistake to report, not to paper over with a new identity); the default key under
    ``<data dir>/keys/`` is created (0600, outside the database) when absent, with its
    ML-DSA-65 sibling. Returns the log's keyring, which follows key rotations
    (``ledgerline keys rotate``) without a restart.
    """
    from replay.keys import Keyring
    from replay.log import ENV_SIGNING_KEY, origin, signing_key_path
    from replay.signing import KeyFileError, generate_key, generate_signing_key, pq_key_path
    from replay.verifier import ML_DSA_65

    path = signing_key_path(settings.data_dir)
    if not path.exists() and not os.environ.get(ENV_SIGNING_KEY):
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            verifier = generate_signing_key(path, origin())
        except KeyFileError:
            pass  # another process created it meanwhile: load that one
        except OSError as exc:
            raise LedgerlineError(f"cannot create the signing key {path}: {exc}") from None
        else:
            print(
                f"ledgerline: created the checkpoint signing key {path}; its verifier key "
                f"(publish it): {verifier.encode()}",
                flush=True,
            )
    pq_path = pq_key_path(path)
    if path.exists() and not pq_path.exists() and not pq_path.is_symlink():
        # A key made before checkpoints carried a post-quantum signature: add its sibling.
        try:
            pq_verifier = generate_key(pq_path, origin(), ML_DSA_65)
        except KeyFileError:
            pass  # another process created it meanwhile
        except OSError as exc:
            raise LedgerlineError(f"cannot create the signing key {pq_path}: {exc}") from None
        else:
            print(
                f"ledgerline: created the ML-DSA-65 checkpoint signing key {pq_path}; its "
                f"verifier key (publish it): {pq_verifier.encode()}",
                flush=True,
            )
    keyring = Keyring(path, origin())
    try:
        keyring.base_signers()
    except KeyFileError as exc:
        raise LedgerlineError(str(exc)) from None
    return keyring


def _fresh_metrics_dir(settings: Settings) -> Path:
    path = settings.data_dir.resolve() / "metrics" / str(os.getpid())
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def worker_app() -> Any:
    """App factory for ``serve --workers N``: each worker process builds its own runtime.

    Workers get the runtime's URL only: the parent ran the migrations with the owner's.
    """
    import atexit

    from eventstore.gc_tuning import tune_gc
    from ledgerline.config import load_settings
    from ledgerline.logs import ENV_LOG_FORMAT, ENV_LOG_LEVEL, configure
    from ledgerline.runtime import build_runtime

    configure(os.environ.get(ENV_LOG_LEVEL, "info"), os.environ.get(ENV_LOG_FORMAT))
    app_url = os.environ[WORKER_URL_ENV]
    settings = load_settings()
    if multiprocess():
        from prometheus_client import multiprocess as mp

        atexit.register(lambda: mp.mark_process_dead(os.getpid()))  # type: ignore[no-untyped-call]
    runtime = build_runtime(
        None,
        app_url=app_url,
        in_process_projection=not settings.kafka_bootstrap_servers,
        apply_projections=False,  # serve's projector process applies them
        signing_key=ensure_signing_key(settings),
        api_options=settings.api_options(),
        cache_max_bytes=settings.cache_max_mb << 20,
        snapshot_every=settings.snapshot_every,
    )
    atexit.register(runtime.close)
    tune_gc()
    return runtime.app


def serve(urls: DatabaseUrls, settings: Settings, workers: int = 1) -> int:
    import uvicorn

    from eventstore.store import runtime_url
    from ledgerline.http_protocol import CoalescingHttpToolsProtocol
    from ledgerline.runtime import build_runtime, migrate_all

    check_port_free(settings.host, settings.port)
    signing_key = ensure_signing_key(settings)  # once, before any worker process starts
    print(f"ledgerline: serving on http://{settings.host}:{settings.port}", flush=True)
    if workers > 1:
        # Several processes share the store: each decides under the writers' lock, and one of
        # them (elected by an advisory lock) runs the duties (expiry sweeps, checkpoints). The
        # projector is a process of its own, started here.
        app_url = urls.app
        if urls.owner is not None:
            migrate_all(urls.owner, urls.app)
            app_url = app_url or runtime_url(urls.owner)
        assert app_url is not None
        os.environ[WORKER_URL_ENV] = app_url
        # The workers' metrics go to files that a scrape of any worker adds up.
        os.environ[MULTIPROCESS_ENV] = str(_fresh_metrics_dir(settings))
        # Every setting the workers need, whether it came from a flag, the environment or the
        # config file: each worker reads its settings from its environment.
        os.environ.update(settings.as_environment())
        projector = _start_projector(settings, app_url)
        try:
            uvicorn.run(
                "ledgerline.serve:worker_app",
                factory=True,
                workers=workers,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                log_config=None,  # keep ledgerline's one-line logs; the app logs access
                access_log=False,
                http=CoalescingHttpToolsProtocol,
            )
        finally:
            if projector is not None:
                projector.stop()
        return 0
    runtime = build_runtime(
        urls.owner,
        app_url=urls.app,
        in_process_projection=not settings.kafka_bootstrap_servers,
        apply_projections=False,  # serve's projector process applies them
        signing_key=signing_key,
        api_options=settings.api_options(),
        cache_max_bytes=settings.cache_max_mb << 20,
        snapshot_every=settings.snapshot_every,
    )
    projector = None
    try:
        # After build_runtime: its migrations are done.
        projector = _start_projector(settings, runtime.store.app_url)
        config = uvicorn.Config(
            runtime.app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            log_config=None,
            access_log=False,
            lifespan="off",
            http=CoalescingHttpToolsProtocol,
        )
        uvicorn.Server(config).run()
    finally:
        runtime.close()
        if projector is not None:
            projector.stop()
    return 0


def _start_projector(settings: Settings, app_url: str) -> ProjectorProcess | None:
    """The projector's own process; none in Kafka mode (the Faust workers project)."""
    if settings.kafka_bootstrap_servers:
        return None
    from ledgerline.projector_process import ProjectorProcess

    return ProjectorProcess(app_url).start()
