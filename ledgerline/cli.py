"""The ``ledgerline`` command line: a thin shell over the composition root.

Every failure a user can cause prints one line, ``ledgerline: error: ...``, on stderr and exits
non-zero; a traceback appears only with ``LEDGERLINE_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eventstore.errors import EventStoreError
from eventstore.gc_tuning import tune_gc
from ledgerline.cli_common import (
    EXIT_BROKEN,
    EXIT_INTERNAL,
    EXIT_USAGE,
    Parser,
    add_db_options,
    add_log_options,
    settings_from_args,
)
from ledgerline.config import Settings
from ledgerline.errors import LedgerlineError
from ledgerline.progress import Progress


def cmd_migrate(args: argparse.Namespace) -> int:
    from eventstore.schema import LATEST_VERSION
    from ledgerline.database import database_url
    from ledgerline.runtime import migrate_all

    settings = settings_from_args(args)
    with database_url(settings) as url:
        migrate_all(url, settings.app_database_url)
        print(f"schema is up to date (event store version {LATEST_VERSION})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ledgerline.database import database_urls
    from ledgerline.serve import serve

    settings = settings_from_args(args)
    if args.workers < 1:
        raise LedgerlineError("--workers must be at least 1")
    with database_urls(settings) as urls:
        return serve(urls, settings, workers=args.workers)


def cmd_signing_create(args: argparse.Namespace) -> int:
    from replay.log import origin, signing_key_path
    from replay.signing import KeyFileError, generate_signing_key, pq_key_path, public_key_path

    settings = settings_from_args(args)
    path = Path(args.key_file) if args.key_file else signing_key_path(settings.data_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        verifier = generate_signing_key(path, args.name or origin())
        pq_verifier = public_key_path(pq_key_path(path)).read_text(encoding="ascii").strip()
    except (KeyFileError, OSError) as exc:
        raise LedgerlineError(f"cannot create the signing key: {exc}") from None
    print(verifier.encode())
    print(pq_verifier)
    print(
        f"private keys written to {path} (Ed25519) and {pq_key_path(path)} (ML-DSA-65), "
        "mode 0600; publish the verifier keys above",
        file=sys.stderr,
    )
    return 0


def _signing_key(args: argparse.Namespace, settings: Settings) -> Any:
    """The log's keyring: the configured key file, its ML-DSA-65 sibling and rotated keys."""
    from replay.keys import Keyring
    from replay.log import origin, signing_key_path
    from replay.signing import KeyFileError

    path = Path(args.key_file) if args.key_file else signing_key_path(settings.data_dir)
    keyring = Keyring(path, origin())
    try:
        keyring.base_signers()  # fail now, in one line, on a missing or unsafe key file
    except KeyFileError as exc:
        raise LedgerlineError(f"{exc} (create one with: ledgerline keys signing-create)") from None
    return keyring


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from eventstore.store import EventStore
    from ledgerline.database import database_url
    from replay.log import CheckpointError, make_checkpoint, published
    from replay.signing import KeyFileError
    from replay.witness import collect_cosignatures

    settings = settings_from_args(args)
    key = _signing_key(args, settings)
    with database_url(settings) as url, EventStore(url, pool_size=2) as store:
        try:
            cp = make_checkpoint(store.recorder, key)
        except (CheckpointError, KeyFileError) as exc:
            raise LedgerlineError(str(exc)) from None
        collect_cosignatures(store.recorder, cp)
        note = published(store.recorder, cp)
    sys.stdout.write(note)
    return 0


def _as_of_position(recorder: Any, args: argparse.Namespace) -> int | None:
    from api.ledger_routes import parse_as_of
    from api.problems import Problem
    from replay.replay import position_as_of

    if getattr(args, "as_of", None):
        try:
            return int(position_as_of(recorder, parse_as_of(args.as_of)))
        except Problem as exc:
            raise LedgerlineError(exc.detail) from None
    position = getattr(args, "to_position", None)
    if position is not None and position < 1:
        raise LedgerlineError(f"--to-position must be a position (1 or more), not {position}")
    return int(position) if position is not None else None


def cmd_replay(args: argparse.Namespace) -> int:
    from eventstore.store import EventStore
    from ledgerline.database import database_url
    from ledgerline.runtime import require_migrated
    from replay.replay import replay

    with database_url(settings_from_args(args), existing=True) as url:
        require_migrated(url)
        with EventStore(url, pool_size=2, run_migrations=False) as store:
            upto = _as_of_position(store.recorder, args)
            total = store.recorder.head().position if upto is None else upto
            with _progress(args, "replay", total) as progress:
                report = replay(
                    store.recorder,
                    url,
                    to_position=upto,
                    check=args.check,
                    batch_size=_batch_size(args),
                    progress=progress,
                )
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(
            f"replayed {report.events} events up to position {report.upto_position}: "
            f"chains {'intact' if report.chain_break is None else 'BROKEN'}, "
            f"merkle root {report.merkle_root.hex()}"
        )
        if report.checkpoint_size:
            print(
                f"checkpoint {report.checkpoint_size}: "
                f"{'root matches' if report.checkpoint_matches else 'ROOT DIFFERS'}"
            )
        for table, digest in report.digests.items():
            live = (report.live_digests or {}).get(table)
            verdict = "" if live is None else ("  = live" if live == digest else "  != LIVE")
            print(f"  {table:16} {digest}{verdict}")
        for diff in report.differences:
            if diff.count:
                print(
                    f"  {diff.table}: {diff.count} rows differ, e.g. "
                    f"{(diff.different or diff.only_live or diff.only_replayed)[:5]}"
                )
    if report.chain_break is not None:
        print(f"ledgerline: replay FAILED: {report.chain_break}", file=sys.stderr)
    return 0 if report.ok else EXIT_BROKEN


def _reports_at(url: str, store: Any, position: int | None) -> tuple[Any, dict[str, Any]]:
    from eventstore.store import connect_owner
    from replay import reports
    from replay.replay import replay

    result = replay(store.recorder, url, to_position=position, keep_schema=True)
    try:
        with connect_owner(url) as conn:
            tables = reports.compute(conn, str(result.schema))
    finally:
        with connect_owner(url) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{result.schema}" CASCADE')
    return result, tables


def cmd_report(args: argparse.Namespace) -> int:
    from eventstore.store import EventStore
    from ledgerline.database import database_url
    from ledgerline.runtime import require_migrated
    from replay import reports
    from replay.log import latest_checkpoint

    with database_url(settings_from_args(args), existing=True) as url:
        require_migrated(url)
        with EventStore(url, pool_size=2, run_migrations=False) as store:
            result, tables = _reports_at(url, store, _as_of_position(store.recorder, args))
            cp = latest_checkpoint(store.recorder)
    meta = {
        "report": args.name,
        "as_of_position": result.upto_position,
        "merkle_root": result.merkle_root.hex(),
        "checkpoint": {"size": cp.size, "root": cp.root.hex()} if cp else None,
    }
    table = reports.present(tables[args.name])
    out = Path(args.out) if args.out else _dated_folder() / args.name
    target = reports.write(table, out, args.format, meta)
    if not args.quiet:
        print(reports.summary(table))
    print(f"{args.name}: {table.num_rows} rows as of position {result.upto_position} -> {target}")
    return 0


def _dated_folder() -> Path:
    """Where a report goes without ``--out``: ``reports/<UTC date>`` under the current one."""
    import datetime as dt

    return Path("reports") / dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def cmd_export(args: argparse.Namespace) -> int:
    from eventstore.store import EventStore, connect_owner
    from ledgerline.database import database_url
    from ledgerline.runtime import require_migrated
    from replay import reports
    from replay.export import ExportError, export_bundle, export_range
    from replay.signing import KeyFileError

    settings = settings_from_args(args)
    key = _signing_key(args, settings)
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LedgerlineError(f"{out} is not empty; export into a new directory")
    with database_url(settings, existing=True) as url:
        require_migrated(url)
        with EventStore(url, pool_size=2, run_migrations=False) as store:
            head = store.recorder.head().position
            try:
                last = export_range(head, args.from_position, args.to_position)
                with connect_owner(url) as conn:
                    tables = reports.compute_range(conn, store.recorder, args.from_position, last)
                with _progress(args, "export", last - args.from_position + 1) as progress:
                    manifest = export_bundle(
                        store.recorder,
                        Path(args.out),
                        key,
                        from_position=args.from_position,
                        to_position=last,
                        trusted_sizes=args.trusted_size or (),
                        reports=tables,
                        progress=progress,
                    )
            except (ExportError, reports.ReportError, KeyFileError) as exc:
                raise LedgerlineError(str(exc)) from None
    print(
        f"exported positions {manifest['first_position']}..{manifest['last_position']} "
        f"({manifest['event_count']} events) to {args.out}"
    )
    return 0


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    from replay import verifier

    argv = [args.bundle, "--require", args.require]
    for key in args.public_key or ():
        argv += ["--public-key", key]
    for witness in args.witness or ():
        argv += ["--witness", witness]
    if args.witness_quorum is not None:
        argv += ["--witness-quorum", str(args.witness_quorum)]
    if args.trusted_checkpoint:
        argv += ["--trusted-checkpoint", args.trusted_checkpoint]
    if args.trust_bundled_key:
        argv.append("--trust-bundled-key")
    return verifier.main(argv)


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from eventstore.store import EventStore
    from ledgerline.database import database_url
    from ledgerline.runtime import migrate_all
    from replay.keys import KeyConfigError, rotate_keys
    from replay.signing import KeyFileError

    settings = settings_from_args(args)
    keyring = _signing_key(args, settings)
    if args.overlap_s < 0:
        raise LedgerlineError(f"--overlap-s must not be negative, got {args.overlap_s}")
    with database_url(settings) as url:
        migrate_all(url)
        with EventStore(url, pool_size=1, run_migrations=False) as store:
            try:
                rotation = rotate_keys(store.recorder, keyring, overlap_s=args.overlap_s)
            except (KeyConfigError, KeyFileError) as exc:
                raise LedgerlineError(str(exc)) from None
    for key in rotation.added:
        print(key.encode())
    print(
        f"new keys written beside {keyring.path}; the {len(rotation.retiring)} current keys "
        f"keep signing for {args.overlap_s} s; publish the verifier keys above",
        file=sys.stderr,
    )
    return 0


def _progress(args: argparse.Namespace, label: str, total: int | None) -> Progress:
    """Progress of a long job on stderr: shown on a terminal, never with ``--json``."""
    return Progress(label, total, enabled=sys.stderr.isatty() and not getattr(args, "json", False))


def _batch_size(args: argparse.Namespace) -> int:
    size = int(getattr(args, "batch_size", None) or 10_000)
    if size < 1:
        raise LedgerlineError(f"--batch-size must be at least 1, not {size}")
    return size


def cmd_keys(args: argparse.Namespace) -> int:
    from api.keys import Role, create_key
    from eventstore.store import connect_owner
    from ledgerline.database import database_url
    from ledgerline.runtime import migrate_all

    with database_url(settings_from_args(args)) as url:
        migrate_all(url)
        with connect_owner(url) as conn:
            key = create_key(conn, Role(args.role), args.label or "")
    print(key.token)
    print(
        f"key {key.key_id} ({key.role.value}) created; the token is shown only once",
        file=sys.stderr,
    )
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from api.keys import list_keys
    from eventstore.store import connect_owner
    from ledgerline.database import database_url

    with database_url(settings_from_args(args), existing=True) as url, connect_owner(url) as conn:
        keys = list_keys(conn)
    if args.json:
        print(json.dumps([{**vars(k), "live": k.live} for k in keys], indent=2, default=str))
        return 0
    from ledgerline.cli_client import _table

    print(
        _table(
            [
                (
                    k.key_id,
                    k.role,
                    k.label or "-",
                    str(k.created_at)[:19],
                    str(k.revoked_at)[:19] if k.revoked_at else "live",
                )
                for k in keys
            ],
            ("key", "role", "label", "created", "revoked"),
        )
    )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from api.keys import LastAdminKey, get_key, revoke_key
    from eventstore.store import connect_owner
    from ledgerline.database import database_url

    with database_url(settings_from_args(args), existing=True) as url, connect_owner(url) as conn:
        found = get_key(conn, args.key_id)
        if found is None or not found.live:
            raise LedgerlineError(f"no live API key {args.key_id!r} (ledgerline keys list)")
        try:
            revoke_key(conn, args.key_id, revoked_by="cli")
        except LastAdminKey:
            raise LedgerlineError(
                f"key {args.key_id} is the last live admin key; create another admin key first"
            ) from None
    print(f"key {args.key_id} revoked; servers stop accepting it within 1 s", file=sys.stderr)
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from ledgerline.completion import script

    print(script(build_parser(), args.shell))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from eventstore.store import EventStore
    from eventstore.verify import verify_store
    from ledgerline.database import database_url
    from ledgerline.runtime import require_migrated

    batch_size = _batch_size(args)
    with database_url(settings_from_args(args), existing=True) as url:
        require_migrated(url, read_models=False)
        with (
            EventStore(url, pool_size=1, run_migrations=False) as store,
            _progress(args, "verify", store.recorder.head().position) as progress,
        ):
            report = verify_store(store.recorder, batch_size, progress=progress)
    if report.first_break is not None:
        print(f"ledgerline: verify FAILED: first broken {report.first_break}", file=sys.stderr)
        return EXIT_BROKEN
    print(
        f"verified {report.events_checked} events in {report.streams_checked} streams: "
        f"chains intact, positions gapless, {report.tiles_checked} Merkle tiles match; "
        f"head position {report.head_position} hash {report.head_hash.hex()}"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ledgerline.database import database_url
    from ledgerline.demo import run_demo
    from ledgerline.serve import ensure_signing_key

    settings = settings_from_args(args)
    with database_url(settings) as url:
        return run_demo(url, out=sys.stdout, signing_key=ensure_signing_key(settings))


def _bench_append(args: argparse.Namespace) -> dict[str, Any]:
    from ledgerline import bench_append
    from ledgerline.database import database_url

    with database_url(settings_from_args(args)) as url:
        return bench_append.run(
            url,
            events=args.events or 20_000,
            seconds=args.seconds,
            cold_history=args.history or 100_000,
        )


def _bench_replay(args: argparse.Namespace) -> dict[str, Any]:
    from ledgerline import bench_replay
    from ledgerline.database import database_url

    with database_url(settings_from_args(args)) as url:
        return bench_replay.run(url, events=args.events or 200_000)


def _bench_api(args: argparse.Namespace) -> dict[str, Any]:
    from ledgerline import bench_api

    return bench_api.run(
        seconds=args.seconds,
        clients=args.clients,
        baseline_seconds=min(args.seconds, 5.0),
        workers=args.workers,
        idle_seconds=min(5.0, max(1.0, args.seconds)),
        # A short run imports a short file: about what the target does in --seconds.
        import_transfers=args.events or max(10_000, min(200_000, int(5_000 * args.seconds))),
        load_generator=args.load_generator,
    )


def _bench_memory(args: argparse.Namespace) -> dict[str, Any]:
    from ledgerline import bench_memory

    return bench_memory.run(
        accounts=bench_memory.DEFAULT_ACCOUNTS if args.accounts is None else args.accounts,
        transfers=bench_memory.DEFAULT_TRANSFERS if args.transfers is None else args.transfers,
        seconds=args.seconds,
        clients=args.clients,
        workers=args.workers,
    )


def _bench_projections(args: argparse.Namespace) -> dict[str, Any]:
    from ledgerline import bench_projections
    from ledgerline.database import database_url

    with database_url(settings_from_args(args)) as url:
        return bench_projections.run(
            url, events=args.events or 5000, rate=args.rate or 1000.0, sustain_s=args.seconds
        )


# name -> (run, the least --events it accepts)
_CORE_BENCHES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "append": _bench_append,
    "api": _bench_api,
    "memory": _bench_memory,
    "projections": _bench_projections,
    "replay": _bench_replay,
}
_MIN_EVENTS = {"projections": 100}
# --seconds and --clients when not given: per bench, else the first entry's
_DEFAULTS: dict[str, dict[str, Any]] = {
    "": {"seconds": 5.0, "clients": 32},
    "memory": {"seconds": 30.0, "clients": 8},
    "projections": {"seconds": 10.0, "clients": 32},  # --seconds: the sustained run's length
}


def benches() -> dict[str, Callable[[argparse.Namespace], dict[str, Any]]]:
    from ledgerline.contexts import CONTEXTS

    return {**_CORE_BENCHES, **{n: f for m in CONTEXTS for n, f in m.benches.items()}}


# bench -> the figures ``--repeat`` reports for every run (a path into the result), the first
# one choosing the median run
_REPEAT_FIGURES: dict[str, tuple[tuple[str, ...], ...]] = {
    "replay": (("replay_events_per_s",), ("replay_seconds",)),
    "projections": (
        ("kafka", "events_per_s"),
        ("kafka", "lag_p99_ms"),
        ("in_process", "events_per_s"),
        ("in_process", "lag_p99_ms"),
        ("kafka_vs_raw_consume",),
        ("kafka", "sustained", "lag_p99_ms"),
    ),
}


def _figure(result: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = result
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _repeated(args: argparse.Namespace) -> dict[str, Any]:
    """Run the bench ``--repeat`` times; the median run's result (by its first figure), with
    every run's figures and pass/fail beside it."""
    paths = _REPEAT_FIGURES.get(args.name)
    if paths is None:
        raise LedgerlineError(
            f"--repeat is supported by {', '.join(sorted(_REPEAT_FIGURES))}, not {args.name}"
        )
    results = [benches()[args.name](args) for _ in range(args.repeat)]
    order = sorted(range(len(results)), key=lambda i: float(_figure(results[i], paths[0]) or 0))
    median = results[order[len(order) // 2]]
    median["repeat"] = {
        "runs": args.repeat,
        "median_by": ".".join(paths[0]),
        "median_run": order[len(order) // 2] + 1,
        "figures": {".".join(path): [_figure(r, path) for r in results] for path in paths},
        "pass": [r.get("pass") for r in results],
    }
    return median


def cmd_bench(args: argparse.Namespace) -> int:
    min_events = _MIN_EVENTS.get(args.name, 1000)
    for key, value in _DEFAULTS.get(args.name, _DEFAULTS[""]).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if (
        (args.events is not None and args.events < min_events)
        or args.seconds <= 0
        or args.clients < 1
        or (args.rate is not None and args.rate <= 0)
        or args.repeat < 1
    ):
        raise LedgerlineError(
            f"--events must be at least {min_events}, --seconds and --rate positive and "
            "--clients and --repeat at least 1"
        )
    if args.load_generator is not None and args.name != "api":
        raise LedgerlineError(f"--load-generator is for bench api, not {args.name}")
    if (args.accounts is not None and args.accounts < 2) or (
        args.transfers is not None and args.transfers < 1
    ):
        raise LedgerlineError("--accounts must be at least 2 and --transfers at least 1")
    result = _repeated(args) if args.repeat > 1 else benches()[args.name](args)
    if "peak_rss_mb" not in result:
        import resource

        result["peak_rss_mb"] = {
            "bench": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "children": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:40} {value}")
    return 0


def _kafka(settings: Settings) -> Any:
    from ledgerline.streaming import kafka_settings

    return kafka_settings(settings.kafka_bootstrap_servers)


def cmd_relay(args: argparse.Namespace) -> int:
    from ledgerline.database import database_urls
    from ledgerline.streaming import run_relay

    settings = settings_from_args(args)
    kafka = _kafka(settings)
    with database_urls(settings) as urls:
        return run_relay(urls, kafka)


def cmd_worker(args: argparse.Namespace) -> int:
    from ledgerline.database import database_urls
    from ledgerline.streaming import run_worker

    settings = settings_from_args(args)
    kafka = _kafka(settings)
    with database_urls(settings) as urls:
        return run_worker(urls, kafka, settings.data_dir)


def cmd_projections_status(args: argparse.Namespace) -> int:
    from eventstore.store import EventStore
    from ledgerline.database import database_urls
    from ledgerline.runtime import require_migrated
    from projections.manage import status
    from projections.relay import relay_positions

    with database_urls(settings_from_args(args), existing=True) as urls:
        require_migrated(urls.app or urls.owner or "")
        with (
            EventStore(urls.owner, app_url=urls.app, pool_size=1, run_migrations=False) as store,
            store.datastore.get_connection() as c,
        ):
            rows = status(store, c)
            relays = relay_positions(store.recorder)
            head = store.recorder.head().position
    unhealthy = [
        r.name
        for r in rows
        if args.max_lag_events is not None
        and (r.lag_events > args.max_lag_events or r.failures > 0)
    ]
    code = EXIT_BROKEN if unhealthy else 0
    if args.json:
        print(json.dumps([r.to_json() for r in rows], indent=2))
        return code
    print(
        f"{'projection':12} {'mode':6} {'position':>10} {'head':>10} {'lag events':>10} "
        f"{'lag s':>9} {'failures':>8}"
    )
    for r in rows:
        print(
            f"{r.name:12} {r.mode:6} {r.position:>10} {r.head:>10} {r.lag_events:>10} "
            f"{r.lag_seconds:>9.3f} {r.failures:>8}"
        )
        if r.last_failure:
            print(f"  last failure: {r.last_failure}")
    for relay, position in relays.items():
        print(f"relay {relay}: published up to {position} ({head - position} events behind)")
    if unhealthy:
        print(f"ledgerline: unhealthy: {', '.join(unhealthy)}", file=sys.stderr)
    return code


def cmd_projections_rebuild(args: argparse.Namespace) -> int:
    from eventstore.store import EventStore
    from ledgerline.database import database_url
    from ledgerline.runtime import migrate_all
    from projections.manage import RebuildError, projection_spec, rebuild

    source = None
    try:
        spec = projection_spec(args.name)  # an unknown name fails before any database starts
        if args.source == "kafka":
            from projections.kafka_rebuild import KafkaSource

            if len(spec.contexts) != 1:
                raise RebuildError(
                    f"{spec.name} reads {len(spec.contexts)} topics; rebuild it from the store"
                )
            kafka = _kafka(settings_from_args(args))
            topic = f"{kafka.topic_prefix}{spec.contexts[0]}"
            source = KafkaSource(kafka.bootstrap_servers, topic)
        with database_url(settings_from_args(args)) as url:
            migrate_all(url)
            with EventStore(url, pool_size=2, run_migrations=False) as store:
                total = store.recorder.head().position
                with _progress(args, f"rebuild {spec.name}", total) as progress:
                    result = rebuild(
                        url, store.recorder, args.name, kafka=source, progress=progress
                    )
    except RebuildError as exc:
        raise LedgerlineError(str(exc)) from None
    print(
        f"rebuilt {result.name}: {result.events} events, now at position {result.position} "
        f"({result.mode} tracking) in {result.seconds:.2f} s"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one flat list
    from importlib.metadata import PackageNotFoundError, version

    parser = Parser(prog="ledgerline", description="Event-sourced, hash-chained ledger core.")
    try:
        installed = version("ledgerline")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        installed = "unknown"
    parser.add_argument("--version", action="version", version=f"ledgerline {installed}")
    add_db_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("migrate", help="create or upgrade the schema, then exit")
    add_db_options(p)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("verify", help="prove every hash chain, position and Merkle tile intact")
    p.add_argument(
        "--batch-size", type=int, default=10_000, help="events read per query (default 10,000)"
    )
    add_db_options(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("demo", help="write a realistic stream of events, verify, summarise")
    add_db_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="run the HTTP API (and, without Kafka, the projector)")
    p.add_argument("--host", help="listen address (env LEDGERLINE_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (env LEDGERLINE_PORT, default 8000)")
    p.add_argument("--workers", type=int, default=1, help="HTTP worker processes (default 1)")
    add_db_options(p)
    p.set_defaults(func=cmd_serve)

    for name, func, text in (
        ("relay", cmd_relay, "publish committed events to Kafka, in position order"),
        ("worker", cmd_worker, "a Faust worker building the read models from Kafka"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument(
            "--kafka-bootstrap-servers", help="Kafka brokers (env KAFKA_BOOTSTRAP_SERVERS)"
        )
        add_db_options(p)
        p.set_defaults(func=func)

    p = sub.add_parser("keys", help="manage API keys")
    keys = p.add_subparsers(dest="keys_command", required=True, parser_class=Parser)
    k = keys.add_parser("create", help="create an API key and print its token once")
    k.add_argument(
        "--role",
        required=True,
        choices=["operator", "auditor", "regulator", "admin", "analyst"],
    )
    k.add_argument("--label", help="a note stored with the key")
    add_db_options(k)
    k.set_defaults(func=cmd_keys)
    k = keys.add_parser("list", help="every API key: id, role, label, created, revoked")
    k.add_argument("--json", action="store_true")
    add_db_options(k)
    k.set_defaults(func=cmd_keys_list)
    k = keys.add_parser("revoke", help="revoke an API key for good")
    k.add_argument("key_id", help="the key's id (the part after ll_ in its token)")
    add_db_options(k)
    k.set_defaults(func=cmd_keys_revoke)
    k = keys.add_parser("signing-create", help="create the Ed25519 checkpoint signing key")
    k.add_argument(
        "--key-file",
        help="where to write it (env LEDGERLINE_SIGNING_KEY, default "
        "<data dir>/keys/checkpoint.key)",
    )
    k.add_argument("--name", help="key name (default: the log origin)")
    add_db_options(k)
    k.set_defaults(func=cmd_signing_create)
    k = keys.add_parser(
        "rotate",
        help="new Ed25519 and ML-DSA-65 signing keys; the current ones keep signing for an overlap",
    )
    k.add_argument("--key-file", help="the current signing key (env LEDGERLINE_SIGNING_KEY)")
    k.add_argument(
        "--overlap-s",
        type=int,
        default=86_400,
        help="seconds both generations sign checkpoints and manifests (default 86,400)",
    )
    add_db_options(k)
    k.set_defaults(func=cmd_keys_rotate)

    p = sub.add_parser("checkpoint", help="sign and store a checkpoint of the whole log")
    p.add_argument("--key-file", help="the signing key (env LEDGERLINE_SIGNING_KEY)")
    add_db_options(p)
    p.set_defaults(func=cmd_checkpoint)

    p = sub.add_parser("replay", help="re-verify the log and rebuild every read model")
    p.add_argument("--to-position", type=int, help="stop at this position")
    p.add_argument("--as-of", help="stop at this time (RFC 3339)")
    p.add_argument(
        "--check",
        action="store_true",
        help="compare with the live read models (exit 1 on any difference)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--batch-size", type=int, default=10_000, help="events read per query (default 10,000)"
    )
    add_db_options(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("report", help="a regulator report computed from a replay")
    from replay.reports import REPORTS

    p.add_argument("name", choices=list(REPORTS))
    p.add_argument("--to-position", type=int)
    p.add_argument("--as-of", help="RFC 3339 time")
    p.add_argument("--format", choices=["parquet", "csv", "json"], default="parquet")
    p.add_argument(
        "--out",
        help="output path without extension (default: reports/<UTC date>/<report name>)",
    )
    p.add_argument(
        "--quiet", action="store_true", help="no summary table, only the line naming the file"
    )
    add_db_options(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="write a signed evidence bundle for a regulator")
    p.add_argument("--from-position", type=int, default=1)
    p.add_argument("--to-position", type=int)
    p.add_argument("--out", required=True, help="a new, empty directory")
    p.add_argument(
        "--trusted-size",
        type=int,
        action="append",
        help="size of a checkpoint the regulator holds (repeatable)",
    )
    p.add_argument("--key-file", help="the signing key (env LEDGERLINE_SIGNING_KEY)")
    add_db_options(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("verify-bundle", help="verify an evidence bundle offline")
    add_log_options(p)
    p.add_argument("bundle")
    p.add_argument(
        "--public-key",
        action="append",
        help="the log's verifier key, or a file of keys (repeatable)",
    )
    p.add_argument(
        "--require",
        default="ed25519",
        help="signature algorithms that must all sign: ed25519, ml-dsa-65 (comma-separated)",
    )
    p.add_argument(
        "--witness", action="append", help="a witness's verifier key or a file of keys (repeatable)"
    )
    p.add_argument(
        "--witness-quorum", type=int, help="how many of the witnesses must cosign (default: all)"
    )
    p.add_argument("--trusted-checkpoint", help="a signed checkpoint you already hold")
    p.add_argument(
        "--trust-bundled-key",
        action="store_true",
        help="without --public-key, check against the keys the bundle carries (proves nothing "
        "about who made it)",
    )
    p.set_defaults(func=cmd_verify_bundle)

    p = sub.add_parser("bench", help="measure a target against its baseline, in one run")
    p.add_argument("name", choices=sorted(benches()))
    p.add_argument(
        "--clients", type=int, default=None, help="concurrent HTTP clients (api: 32, memory: 8)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server HTTP processes (api, memory; default 1, as serve's: on two cores one"
        " process deciding beside the projector's does more than two contending)",
    )
    p.add_argument(
        "--load-generator",
        choices=("wrk", "aiohttp"),
        default=None,
        help="api: what sends the single transfers (default wrk, in C, when installed: "
        "Debian's package wrk; else aiohttp)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs (replay, projections): print the median run, with every run's figures",
    )
    p.add_argument(
        "--events",
        type=int,
        default=None,
        help="events per batched run (append: 20,000), to replay (replay: 200,000), "
        "transfers per run (projections: 5,000), or obligations (settlement: 1,000,000)",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="seconds per concurrent run (5; memory: 30 of load; projections: 10 of load at "
        "the write side's full rate)",
    )
    p.add_argument(
        "--accounts", type=int, default=None, help="memory: accounts in the store (1,000,000)"
    )
    p.add_argument(
        "--transfers",
        type=int,
        default=None,
        help="memory: transfers in the store (10,000,000)",
    )
    p.add_argument(
        "--history",
        type=int,
        default=None,
        help="events in the cold-start account's stream (append: 100,000)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="offered per second: store events (projections: 1,000; a transfer commits 3), "
        "obligations in the lag run (settlement: 10,000)",
    )
    p.add_argument(
        "--sizes",
        default="1000000,5000000",
        help="evidence: log sizes in events, comma-separated (default 1,000,000 and 5,000,000)",
    )
    p.add_argument(
        "--proofs", type=int, default=200, help="evidence: proofs timed per kind (default 200)"
    )
    add_db_options(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("projections", help="projection lag, and rebuilding one while serving")
    proj = p.add_subparsers(dest="projections_command", required=True, parser_class=Parser)
    k = proj.add_parser("status", help="each projection's position, lag and failures")
    k.add_argument("--json", action="store_true", help="print one JSON array")
    k.add_argument(
        "--max-lag-events",
        type=int,
        help="exit 1 if a projection is further behind than this or has failures (a health check)",
    )
    add_db_options(k)
    k.set_defaults(func=cmd_projections_status)
    k = proj.add_parser("rebuild", help="rebuild a projection's tables and swap them in")
    k.add_argument("name", help="the projection (e.g. ledger)")
    k.add_argument(
        "--source",
        choices=["store", "kafka"],
        default="store",
        help="rebuild from the event store (default) or from the Kafka topic (up to the "
        "relay's position; the rest from the store)",
    )
    add_db_options(k)
    k.set_defaults(func=cmd_projections_rebuild)

    from ledgerline import cli_client
    from ledgerline.contexts import CONTEXTS

    cli_client.register(sub)
    p = sub.add_parser("completion", help="a shell completion script: eval it in your shell")
    p.add_argument("shell", choices=["bash", "zsh"])
    p.set_defaults(func=cmd_completion)
    for module in CONTEXTS:
        if module.cli is not None:
            module.cli(sub)
    return parser


LONG_RUNNING = frozenset({"serve", "relay", "worker"})


def _configure_logs(args: argparse.Namespace) -> None:
    from ledgerline.logs import ENV_LOG_FORMAT, ENV_LOG_LEVEL, FORMATS, LEVELS, configure

    default = "info" if getattr(args, "command", None) in LONG_RUNNING else "warning"
    level = getattr(args, "log_level", None) or os.environ.get(ENV_LOG_LEVEL) or default
    fmt = getattr(args, "log_format", None) or os.environ.get(ENV_LOG_FORMAT) or None
    if level not in LEVELS:
        raise LedgerlineError(f"{ENV_LOG_LEVEL}: {level!r} is not one of {', '.join(LEVELS)}")
    if fmt is not None and fmt not in FORMATS:
        raise LedgerlineError(f"{ENV_LOG_FORMAT}: {fmt!r} is not one of {', '.join(FORMATS)}")
    configure(level, fmt)
    # Children (serve's HTTP workers) log the same way.
    os.environ[ENV_LOG_LEVEL] = level
    if fmt:
        os.environ[ENV_LOG_FORMAT] = fmt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _configure_logs(args)
    except LedgerlineError as exc:
        return _fail(str(exc), EXIT_USAGE)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except LedgerlineError as exc:
        return _fail(str(exc), exc.exit_code)
    except EventStoreError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("LEDGERLINE_DEBUG"):
            raise
        detail = " ".join(str(exc).split())
        return _fail(
            f"internal error: {type(exc).__name__}: {detail} "
            "(set LEDGERLINE_DEBUG=1 for the traceback)",
            EXIT_INTERNAL,
        )


def _fail(message: str, code: int) -> int:
    print(f"ledgerline: error: {message}", file=sys.stderr)
    return code


def entrypoint() -> Any:  # pragma: no cover - console-script shim
    tune_gc()  # a process of its own: every command is a long-lived or a bulk one
    sys.exit(main())
