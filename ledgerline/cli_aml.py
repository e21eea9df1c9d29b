"""``ledgerline aml ...``: ingest, alerts, reports, the simulator and its scorer.

Ingest commands stream their file: one JSON object per line, sent in batches of
``--batch-size`` (each batch is one command: applied whole or not at all), with a progress
line on a terminal. A line that is not JSON, or that the rules refuse, is reported with its
line number; the others are ingested; the exit status is 1 when any line was not.

Commands that read the AML read models (``alerts``, ``report``) first bring the projections
up to date in this process (``--no-catch-up`` reads them as they are).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ledgerline.cli_common import EXIT_BROKEN, Session, add_db_options
from ledgerline.errors import LedgerlineError

ALERT_FIELDS = (
    "alert_id",
    "typology",
    "rule_id",
    "rule_version",
    "score",
    "account_ids",
    "transaction_ids",
    "raised_event_ts",
    "position",
    "subject",
    "episode",
    "category",
    "status",
)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise LedgerlineError(f"cannot read {path}: {exc.strerror or exc}") from None
    with fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                yield number, line


class _Progress:
    def __init__(self, what: str) -> None:
        self.what = what
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.count = 0

    def tick(self, n: int) -> None:
        self.count += n
        if self.tty:
            rate = self.count / max(time.monotonic() - self.started, 1e-9)
            print(f"\r{self.what}: {self.count:,} lines ({rate:,.0f}/s)", end="", file=sys.stderr)

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _ingest(args: argparse.Namespace, kind: str) -> int:
    from commands.aml import accounts_command, batch_command

    make = batch_command if kind == "transactions" else accounts_command
    bad: list[tuple[int, str]] = []
    counts = {"created": 0, "exists": 0}
    progress = _Progress(f"ingesting {kind}")
    with Session(args) as s:
        pending: list[tuple[list[int], Any]] = []

        def settle(limit: int) -> None:
            while len(pending) > limit:
                numbers, future = pending.pop(0)
                outcome = future.result(120)
                if not outcome.accepted:  # pragma: no cover - batches are always accepted
                    raise LedgerlineError(f"batch refused: {outcome.result.get('detail')}")
                for number, item in zip(numbers, outcome.result["results"], strict=True):
                    status = item["status"]
                    if status in ("created", "recorded"):
                        counts["created"] += 1
                    elif status in ("exists", "unchanged"):
                        counts["exists"] += 1
                    else:
                        detail = item.get("problem", {}).get("detail", status)
                        bad.append((number, f"{status}: {detail}"))
                progress.tick(len(numbers))

        batch: list[dict[str, Any]] = []
        numbers: list[int] = []
        for number, line in _lines(Path(args.file)):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                bad.append((number, f"not JSON: {exc.msg} (column {exc.colno})"))
                continue
            if not isinstance(record, dict):
                bad.append((number, "not a JSON object"))
                continue
            batch.append(record)
            numbers.append(number)
            if len(batch) >= args.batch_size:
                pending.append((numbers, s.processor.submit(make(batch))))
                batch, numbers = [], []
                settle(4)  # a few batches in flight: the processor commits them together
        if batch:
            pending.append((numbers, s.processor.submit(make(batch))))
        settle(0)
        progress.done()
        if not args.no_catch_up:
            s.catch_up()
    for number, why in sorted(bad):
        print(f"ledgerline: line {number}: {why}", file=sys.stderr)
    print(
        f"{kind}: {counts['created']} recorded, {counts['exists']} already known, "
        f"{len(bad)} line(s) not ingested"
    )
    if bad:
        print(f"ledgerline: error: {len(bad)} line(s) of {args.file} were not ingested",
              file=sys.stderr)  # fmt: skip
        return EXIT_BROKEN
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    return _ingest(args, "transactions")


def cmd_ingest_accounts(args: argparse.Namespace) -> int:
    return _ingest(args, "accounts")


def cmd_ingest_rates(args: argparse.Namespace) -> int:
    from commands.aml import rates_command

    try:
        doc = json.loads(Path(args.file).read_text())
    except OSError as exc:
        raise LedgerlineError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise LedgerlineError(f"{args.file} is not JSON: {exc}") from None
    rates = doc.get("rates", doc) if isinstance(doc, dict) else None
    if not isinstance(rates, dict) or not all(isinstance(v, str) for v in rates.values()):
        raise LedgerlineError(
            f'{args.file} must hold {{"rates": {{"EUR": "1.0842", ...}}}} with decimal strings'
        )
    with Session(args) as s:
        outcome = s.processor.execute(rates_command(rates, str(doc.get("source", ""))))
    if not outcome.accepted:
        raise LedgerlineError(f"{outcome.result['code']}: {outcome.result.get('detail', '')}")
    print(f"rates {outcome.result['status']}: {', '.join(sorted(outcome.result['rates']))}")
    return 0


def cmd_load_sanctions(args: argparse.Namespace) -> int:
    from commands.aml import LoadSanctions, sanctions_command
    from domain.aml import errors as e
    from domain.aml.sanctions import parse_json_list, parse_sdn_csv

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
        entries = (
            parse_json_list(json.loads(text)) if path.suffix == ".json" else parse_sdn_csv(text)
        )
    except OSError as exc:
        raise LedgerlineError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, e.AmlRejection) as exc:
        raise LedgerlineError(f"{path}: {exc}") from None
    if not entries:
        raise LedgerlineError(f"{path} holds no sanctions entries")
    with Session(args) as s:
        cmd = LoadSanctions(list_id=args.list_id, source=path.name, entries=tuple(entries))
        outcome = s.processor.execute(sanctions_command(cmd))
    if not outcome.accepted:
        raise LedgerlineError(f"{outcome.result['code']}: {outcome.result.get('detail', '')}")
    print(f"sanctions list {args.list_id}: {outcome.result['status']}, version "
          f"{outcome.result['version']}")  # fmt: skip
    return 0


def _alert_record(alert: dict[str, Any]) -> dict[str, Any]:
    from domain.aml.model import format_rfc3339

    out = {k: alert[k] for k in ALERT_FIELDS}
    out["raised_event_ts"] = format_rfc3339(int(alert["raised_event_ts"]))
    return out


def cmd_alerts(args: argparse.Namespace) -> int:
    from eventstore.store import connect_owner
    from readmodels import aml as rm

    with Session(args) as s:
        if not args.no_catch_up:
            s.catch_up()
        with connect_owner(s.url) as conn:
            alerts = rm.list_alerts(
                conn,
                status=args.status,
                typology=args.typology,
                account=args.account,
                limit=10**9,
            )
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    try:
        _write_alerts(out, alerts, args.format)
    except BrokenPipeError:  # the reader stopped early (| head): not an error
        sys.stderr.close()
        return 0
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"{len(alerts)} alert(s) -> {args.out}", file=sys.stderr)
    return 0


def _write_alerts(out: Any, alerts: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=ALERT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for a in alerts:
            record = _alert_record(a)
            for k in ("account_ids", "transaction_ids"):
                record[k] = ";".join(record[k])
            writer.writerow(record)
    else:
        for a in alerts:
            out.write(json.dumps(_alert_record(a), separators=(",", ":")) + "\n")
    out.flush()


def cmd_report(args: argparse.Namespace) -> int:
    from eventstore.store import connect_owner
    from replay import aml_reports

    with Session(args) as s:
        if not args.no_catch_up:
            s.catch_up()
        with connect_owner(s.url) as conn:
            try:
                if args.kind == "sar":
                    if not args.case_id:
                        raise LedgerlineError("aml report sar needs a CASE_ID")
                    report = aml_reports.sar_draft(conn, s.store.recorder, args.case_id)
                else:
                    if not args.date:
                        raise LedgerlineError("aml report ctr needs --date YYYY-MM-DD")
                    report = aml_reports.ctr_draft(conn, s.store.recorder, args.date, args.timezone)
            except aml_reports.ReportError as exc:
                raise LedgerlineError(str(exc)) from None
    text = (
        aml_reports.render_html(report)
        if args.format == "html"
        else json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    )
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"{report['report']} draft -> {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from ledgerline.aml_simulate import simulate

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise LedgerlineError(f"{out} is not empty")
    try:
        summary = simulate(
            out,
            seed=args.seed,
            accounts=args.accounts,
            days=args.days,
            patterns_per_typology=args.patterns,
        )
    except ValueError as exc:
        raise LedgerlineError(str(exc)) from None
    print(json.dumps(summary, indent=2))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from ledgerline.aml_score import score_files

    for path in (args.truth, args.alerts):
        if not Path(path).is_file():
            raise LedgerlineError(f"cannot read {path}")
    try:
        result = score_files(args.truth, args.alerts)
    except (ValueError, KeyError) as exc:
        raise LedgerlineError(f"cannot score: {exc}") from None
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    buf = io.StringIO()
    print(f"recall {result['recall']}  (any typology: {result['recall_any']})", file=buf)
    print(f"precision {result['precision']}  ({result['true_alerts']}/{result['alerts']})",
          file=buf)  # fmt: skip
    for typology, stats in result["per_typology"].items():
        print(f"  {typology:24} {stats['detected']:>4}/{stats['planted']:<4} "
              f"recall {stats['recall']}", file=buf)  # fmt: skip
    print(f"look-alike false alerts {result['lookalike_false_alerts']}", file=buf)
    for kind, stats in result["lookalikes"].items():
        print(f"  {kind:24} {stats['instances_alerted']}/{stats['instances']} alerted", file=buf)
    print(f"CTR {result['ctr']}", file=buf)
    print(f"time to alert (s after the pattern's last transaction) {result['time_to_alert_s']}",
          file=buf)  # fmt: skip
    sys.stdout.write(buf.getvalue())
    return 0


def register(sub: Any) -> None:
    """Add ``ledgerline aml ...`` to the command line."""
    p = sub.add_parser("aml", help="AML monitoring: ingest, alerts, reports, simulate, score")
    aml = p.add_subparsers(dest="aml_command", required=True, parser_class=type(p))

    for name, func, what in (
        ("ingest", cmd_ingest, "transactions (JSONL)"),
        ("ingest-accounts", cmd_ingest_accounts, "KYC records (JSONL)"),
    ):
        k = aml.add_parser(name, help=f"ingest {what}")
        k.add_argument("file")
        k.add_argument("--batch-size", type=int, default=1000, choices=range(1, 10_001),
                       metavar="1..10000")  # fmt: skip
        k.add_argument("--no-catch-up", action="store_true", help="do not project afterwards")
        add_db_options(k)
        k.set_defaults(func=func)

    k = aml.add_parser("ingest-rates", help='load USD rates: {"rates": {"EUR": "1.0842"}}')
    k.add_argument("file")
    add_db_options(k)
    k.set_defaults(func=cmd_ingest_rates)

    k = aml.add_parser("load-sanctions", help="load a sanctions list (OFAC SDN CSV or JSON)")
    k.add_argument("file")
    k.add_argument("--list-id", required=True)
    add_db_options(k)
    k.set_defaults(func=cmd_load_sanctions)

    k = aml.add_parser("alerts", help="print the alerts (JSONL or CSV)")
    k.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    k.add_argument("--typology")
    k.add_argument("--account")
    k.add_argument("--status")
    k.add_argument("--out")
    k.add_argument("--no-catch-up", action="store_true")
    add_db_options(k)
    k.set_defaults(func=cmd_alerts)

    k = aml.add_parser("report", help="a SAR draft of a case, or the CTR drafts of a day")
    k.add_argument("kind", choices=["sar", "ctr"])
    k.add_argument("case_id", nargs="?")
    k.add_argument("--date", help="the business day of the CTRs (YYYY-MM-DD)")
    k.add_argument("--timezone", default="America/New_York")
    k.add_argument("--format", choices=["json", "html"], default="json")
    k.add_argument("--out")
    k.add_argument("--no-catch-up", action="store_true")
    add_db_options(k)
    k.set_defaults(func=cmd_report)

    k = aml.add_parser("simulate", help="write a seeded simulated quarter with ground truth")
    k.add_argument("--seed", type=int, default=1)
    k.add_argument("--out", required=True)
    k.add_argument("--accounts", type=int, default=20_000)
    k.add_argument("--days", type=int, default=90)
    k.add_argument("--patterns", type=int, default=20, help="planted patterns per typology")
    k.set_defaults(func=cmd_simulate)

    k = aml.add_parser("score", help="recall, precision and look-alike false alerts")
    k.add_argument("--truth", required=True)
    k.add_argument("--alerts", required=True)
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_score)
