"""The AML projection: monitoring (detectors, alerts, the flow graph) and the case read model.

Definition
    :class:`AmlProjection` follows the AML context's events and the ledger's (every ledger
    transfer is monitored: a single-phase one when created, a pending one when posted, with
    the posted amount) in log position order. Each monitored transaction is converted to US
    cents with the rates in force at its position, recorded in ``aml_transactions``, added to
    the flow graph, and fed to the domain :class:`~domain.aml.engine.Engine`; rules, rates and
    KYC profiles reach the engine at their positions too (and are journaled in
    ``aml_inputs``). Alerts the engine raised or updated, sanctions hits, case rows and graph
    deltas are written in the caller's transaction.

    The engine keeps the windows of the ``hot_accounts`` most recently used accounts in
    memory and the others in a spill file (:mod:`projections.aml_windows`). The projection
    keeps ``aml_progress`` (the last position it applied, written with the rows); when that
    differs from what its engine has consumed (a restart, a rebuild swapped in under it,
    another Kafka worker sequenced), it rebuilds the engine first: from its checkpoint
    (``aml_checkpoint``, written with the rows once enough transactions came since the last
    one, and when the runner is idle; only the windows changed since the last one when the
    table holds this engine's) and the journal after it, or from the whole journal
    (``aml_transactions`` and ``aml_inputs``) when no checkpoint fits, so every path ends in
    the same state as one run over the whole log. A checkpoint holds pickles: it is used
    only by the same code that wrote it (``ENGINE_CODE``), and only at or before the
    position the tables reflect.

    Kafka: detection depends on the order across streams, so this projection is ``ordered``:
    the worker hands it what it consumes (:meth:`receive`, into ``aml_inbox``), and applies the
    inbox in position order up to the frontier every partition has reached (:meth:`advance`).

Guarantees
    * Replay reproduces ``aml_alerts``, ``aml_edges`` and every other table bit for bit.
    * Every alert cites its rule id and version, its transactions, and the largest log
      position among them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import psycopg

from domain.aml.alerts import RISK_ORDER, score_of
from domain.aml.cases import Case
from domain.aml.engine import Engine
from domain.aml.events import (
    AccountProfileRecorded,
    AmlEvent,
    CaseAlertsAdded,
    CaseAssigned,
    CaseClosed,
    CaseEscalated,
    CaseEvidenceAttached,
    CaseNoteAdded,
    CaseOpened,
    CaseReopened,
    RatesSet,
    RuleChanged,
    SanctionsListLoaded,
    SarFiled,
    TransactionRecorded,
    decode_event,
)
from domain.aml.graph import FlowDeltas
from domain.aml.model import Txn
from domain.aml.rates import RateTable
from domain.aml.reference import profile_of
from domain.aml.rules import definition_of
from domain.aml.windows import Windows
from domain.ledger.events import (
    PendingTransferExpired,
    PendingTransferPosted,
    PendingTransferVoided,
    TransferCreated,
)
from domain.ledger.events import decode_event as decode_ledger
from eventstore.model import StoredEvent
from projections.aml_screening import Screener
from projections.aml_windows import SpillFile
from readmodels import aml as rm
from readmodels.schema import SCHEMA, defer_indexes, restore_indexes

log = logging.getLogger(__name__)

NAME = "aml"
TABLE_KEYS = {**rm.TABLE_KEYS, "aml_progress": ("id",)}
LEDGER_PREFIX = "ledger:"
MAX_USD_MINOR = 2**62  # a ledger amount beyond this (in cents) is not monitorable
NAME_FIELDS = (("from_name", "src"), ("to_name", "dst"))
_TX_TOPIC = TransactionRecorded.TOPIC
# The engine keeps this many accounts' windows in memory; the others wait in a spill file.
# A window read back from it holds about 11 KB at 20 transactions (bench memory): some
# 330 MB at the default, whatever the number of accounts. What grows with the accounts
# monitored is smaller: about 0.6 KB each (last activity, days touched, the spill index).
HOT_ACCOUNTS = 30_000
# A checkpoint of the engine is written once it has observed this many transactions since
# the last one, and at least twice as many as it would write windows (those changed since
# the last, or all of them: at most half a window written per transaction).
CHECKPOINT_MIN_TXNS = 250_000


def _engine_code() -> str:
    """What a checkpoint is valid for: the engine's code (every module of the domain's AML
    package) and this projection's (how it feeds the engine). Any change to either makes
    earlier checkpoints unusable, and the engine is rebuilt from the whole journal."""
    digest = hashlib.sha256()
    domain_aml = Path(sys.modules[Engine.__module__].__file__ or "").parent
    for path in [*sorted(domain_aml.glob("*.py")), Path(__file__)]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


ENGINE_CODE = _engine_code()


def _loads(payload: bytes) -> dict[str, Any]:
    """A flat payload, exactly: orjson reads integers past 64 bits as floats, and these
    payloads hold no floats (extras are float-free), so a float means "reparse"."""
    value: dict[str, Any] = orjson.loads(payload)
    if float in map(type, value.values()):  # one C loop, no generator frame per value
        return json.loads(payload)  # type: ignore[no-any-return]
    return value


class AmlProjection:
    name = NAME
    ordered = True  # the Kafka worker must apply its events in global position order

    def __init__(
        self,
        schema: str = SCHEMA,
        *,
        fresh: bool = False,
        hot_accounts: int = HOT_ACCOUNTS,
        checkpoint_min_txns: int = CHECKPOINT_MIN_TXNS,
    ) -> None:
        self.schema = schema
        self.fresh = fresh  # a rebuild into empty tables: defer edges and alerts to finish()
        self.hot_accounts = hot_accounts
        self.checkpoint_min_txns = checkpoint_min_txns
        self.since_checkpoint = 0  # transactions observed since the engine's checkpoint
        # The checkpoint this engine's record of changed windows counts from (None: none,
        # the next one writes every window), and its last write, until seen committed.
        self._base: int | None = None
        self._written: tuple[int, frozenset[str]] | None = None
        self.engine = self._new_engine()
        self.screener = Screener()
        self.position = 0  # the last position this projection's engine has consumed
        self.warm = fresh  # a fresh rebuild starts from nothing, as the tables do
        self.unmonitored = 0  # ledger transfers that could not be converted to USD
        self._deltas = FlowDeltas()
        self._alerts: dict[str, dict[str, Any]] = {}
        self._inputs: list[tuple[int, str, dict[str, Any]]] = []
        self._profiles: dict[str, tuple[dict[str, Any], int]] = {}
        # A fresh rebuild's pending ledger transfers (the table's rows, written by finish()).
        self._pending: dict[int, tuple[int, str, str, str, int]] = {}

    # ------------------------------------------------------------------ the runner's entry

    def apply(self, cur: psycopg.Cursor[Any], events: Sequence[StoredEvent]) -> None:
        mine = [e for e in events if e.topic.startswith(("aml.", "ledger."))]
        if not mine:
            return
        if not self.fresh:
            done = self._progress(cur)
            if not self.warm or done != self.position:
                self.warm_up(cur, done)
            mine = [e for e in mine if e.position > done]
            if not mine:
                return
            # The engine takes the batch in before its rows are written: should the writing
            # fail (a lost connection, say), the transaction rolls back but the engine would
            # keep the batch, and the retry would count it twice. Not warm until written.
            self.warm = False
        tx_rows: list[tuple[Any, ...]] = []
        cases: dict[str, tuple[Case, int]] = {}
        self._inputs = []
        self._profiles = {}
        for stored in mine:
            self._one(cur, stored, tx_rows, cases)
        rm.copy_transactions(cur, tx_rows, self.schema)
        rm.upsert_profiles(cur, self._profiles.values(), self.schema)
        rm.copy_inputs(cur, self._inputs, self.schema)
        for case, position in cases.values():
            rm.upsert_case(cur, _case_row(case, position), self.schema)
        for alert in self.engine.drain():
            self._alerts[alert.alert_id] = alert.to_row()
        self.position = mine[-1].position
        if not self.fresh:
            rm.add_edges(cur, self._deltas.drain(), self.schema)
            rm.upsert_alerts(cur, self._alerts.values(), self.schema)
            self._alerts = {}
            self._save_progress(cur)
            due = max(self.checkpoint_min_txns, 2 * self.engine.accounts.pending_changes())
            if self.since_checkpoint >= due:
                self._checkpoint_or_log(cur)
            self.warm = True

    def rest_due(self) -> bool:
        """Whether a checkpoint is worth writing while the runner is idle: when replaying
        what came since the last one would cost more than writing one (a transaction
        replayed costs about what eight windows written do)."""
        since, windows = self.since_checkpoint, self.engine.accounts
        return self.warm and not self.fresh and since > 0 and since * 8 >= windows.pending_changes()

    def rest(self, cur: psycopg.Cursor[Any]) -> None:
        """Nothing new to apply (the runner is idle): write the checkpoint if it is due and
        the tables are still where this engine is."""
        if self.rest_due() and self._progress(cur) == self.position:
            self.checkpoint(cur)

    def _checkpoint_or_log(self, cur: psycopg.Cursor[Any]) -> None:
        """A checkpoint beside the batch's rows, in a savepoint: it is a cache, so a failure
        to write it (the disk full, say) is logged and rolled back alone, and tried again
        after as many transactions again, while the rows commit."""
        try:
            with cur.connection.transaction():
                self.checkpoint(cur)
        except psycopg.Error:
            log.exception("could not write the AML engine's checkpoint at %d", self.position)
            self.since_checkpoint = 0

    def checkpoint(self, cur: psycopg.Cursor[Any]) -> None:
        """Write the engine's checkpoint at this projection's position (in the caller's
        transaction, with the rows it reflects): a restart then replays only the journal
        after it.

        When the table holds this engine's previous checkpoint, only the windows changed
        since are replaced; otherwise (none yet, another writer's, other code, or more than
        half the windows changed) every window is written. A write that did not commit (its
        savepoint or transaction rolled back) is noticed by the next one, which then also
        writes what it had."""
        windows = self.engine.accounts
        found = rm.checkpoint_at(cur, self.schema)
        changed = windows.take_changes()
        written, self._written = self._written, None
        if written is not None:
            if found == (written[0], ENGINE_CODE) and written[0] != self._base:
                self._base = written[0]  # it committed: the changes count from it
            elif changed is not None:
                changed |= written[1]  # it did not: its changes are still to be written
        rest = self.engine.checkpoint()
        if changed is None or found is None or found != (self._base, ENGINE_CODE):
            self._base, self._written = None, (self.position, frozenset())
            rm.write_checkpoint(cur, self.position, ENGINE_CODE, rest, windows.saved(), self.schema)
        else:
            accounts = sorted(changed)
            self._written = (self.position, frozenset(accounts))
            rm.update_checkpoint(
                cur,
                self.position,
                ENGINE_CODE,
                rest,
                accounts,
                windows.saved_of(accounts),
                len(windows),
                self.schema,
            )
        self.since_checkpoint = 0

    def finish(self, cur: psycopg.Cursor[Any]) -> None:
        """End of a fresh rebuild: the graph, the alerts and the transfers still pending,
        copied in once."""
        rm.copy_edges(cur, self._deltas.drain(), self.schema)
        rm.copy_pending(cur, self._pending.values(), self.schema)
        self._pending = {}
        rm.upsert_alerts(cur, self._alerts.values(), self.schema)
        self._alerts = {}
        if self.position:  # as live: no row until an event was applied
            self._save_progress(cur)

    def _save_progress(self, cur: psycopg.Cursor[Any]) -> None:
        # One row, written on the first applied event (no row: nothing applied yet).
        cur.execute(
            f"INSERT INTO {self.schema}.aml_progress (id, position) VALUES (1, %s)"
            " ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position",
            (self.position,),
        )

    # ------------------------------------------------------------------ Kafka, in order

    def receive(self, cur: psycopg.Cursor[Any], events: Sequence[StoredEvent]) -> None:
        """Keep events consumed from Kafka until every partition has reached them."""
        rows = [
            (e.position, e.stream_id, e.version, e.topic, e.payload, e.recorded_at_ns)
            for e in events
            if e.topic.startswith(("aml.", "ledger."))
        ]
        if not rows:
            return
        with cur.copy(
            f"COPY {self.schema}.aml_inbox (position, stream_id, version, topic, payload,"
            " recorded_at_ns) FROM STDIN"
        ) as cp:
            for r in rows:
                cp.write_row(r)

    def advance(self, cur: psycopg.Cursor[Any], after: int, frontier: int) -> None:
        """Apply the kept events in ``(after, frontier]``, in position order."""
        rows = cur.execute(
            f"DELETE FROM {self.schema}.aml_inbox WHERE position <= %s"
            " RETURNING position, stream_id, version, topic, payload, recorded_at_ns",
            (frontier,),
        ).fetchall()
        # Anything at or before ``after`` was already applied (a rebuild moved past it).
        values = sorted(
            v
            for v in (tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows)
            if int(v[0]) > after
        )
        events = [
            StoredEvent(int(p), str(s), int(v), str(t), bytes(b), int(at), b"", b"", b"", b"")
            for p, s, v, t, b, at in values
        ]
        self.apply(cur, events)

    # ------------------------------------------------------------------ one event

    def _one(
        self,
        cur: psycopg.Cursor[Any],
        stored: StoredEvent,
        tx_rows: list[tuple[Any, ...]],
        cases: dict[str, tuple[Case, int]],
    ) -> None:
        topic = stored.topic
        if topic.startswith("ledger."):
            if topic in _LEDGER_TOPICS:
                self._ledger(cur, stored, tx_rows)
            return
        payload = _loads(stored.payload)
        if topic == _TX_TOPIC:
            # The hot path: a transaction's fields straight from its payload, without the
            # event object (its construction cost as much as the rest of this method). A
            # payload without a field falls through to the decoder, which names the problem.
            try:
                amount, currency = payload["amount_minor"], payload["currency"]
                txn = Txn(
                    payload["ts_ns"],
                    payload["tx_id"],
                    payload["from_account"],
                    payload["to_account"],
                    self.engine.rates.to_usd_minor(amount, currency),
                    amount,
                    currency,
                    payload["channel"],
                    payload["kind"],
                    payload["from_country"],
                    payload["to_country"],
                    payload["conducted_by"],
                    payload["branch"],
                    stored.position,
                )
                extra = payload["extra"]
            except KeyError:
                pass
            else:
                self._monitor(txn, "aml", extra, tx_rows)
                self._screen_counterparties(cur, txn, extra, stored)
                return
        event = decode_event(topic, payload)
        if isinstance(event, TransactionRecorded):
            txn = Txn(
                event.ts_ns,
                event.tx_id,
                event.from_account,
                event.to_account,
                self.engine.rates.to_usd_minor(event.amount_minor, event.currency),
                event.amount_minor,
                event.currency,
                event.channel,
                event.kind,
                event.from_country,
                event.to_country,
                event.conducted_by,
                event.branch,
                stored.position,
            )
            self._monitor(txn, "aml", event.extra, tx_rows)
            self._screen_counterparties(cur, txn, event.extra, stored)
        elif isinstance(event, (RuleChanged, RatesSet, AccountProfileRecorded)):
            self._reference(cur, stored.position, event)
            if isinstance(event, AccountProfileRecorded) and event.name:
                self._screen_name(cur, event.account, event.name, stored, [])
        elif isinstance(event, SanctionsListLoaded):
            rm.replace_sanctions(
                cur, event.list_id, event.version, event.entries, stored.position, self.schema
            )
            self.screener.load(event.list_id, event.version, event.entries)
            for account, name in sorted(rm.profile_names(cur, self.schema).items()):
                self._screen_name(cur, account, name, stored, [])
        elif isinstance(event, CASE_EVENTS):
            self._case(cur, stored, event, cases)

    def _monitor(
        self, txn: Txn, origin: str, extra: dict[str, Any], tx_rows: list[tuple[Any, ...]]
    ) -> None:
        if txn.usd >= MAX_USD_MINOR:
            self.unmonitored += 1
            return
        txn = compact(txn)
        tx_rows.append((*txn_row(txn, origin), extra))
        self._deltas.add(txn)
        self.engine.observe(txn)
        self.since_checkpoint += 1

    def _ledger(
        self, cur: psycopg.Cursor[Any], stored: StoredEvent, tx_rows: list[tuple[Any, ...]]
    ) -> None:
        event = decode_ledger(stored.topic, _loads(stored.payload))
        if isinstance(event, TransferCreated):
            debit, credit = str(event.debit_account_id), str(event.credit_account_id)
            if event.pending:
                row = (event.transfer_id, debit, credit, event.currency, event.created_at_ns)
                if self.fresh:  # the table is this rebuild's alone: kept here until finish()
                    self._pending[event.transfer_id] = row
                else:
                    rm.pending_put(cur, row, self.schema)
                return
            self._ledger_txn(
                event.transfer_id, debit, credit, event.amount, event.currency,
                event.created_at_ns, stored.position, tx_rows,
            )  # fmt: skip
        elif isinstance(event, PendingTransferPosted):
            pending = self._pending_take(cur, event.transfer_id)
            if pending is not None:
                debit, credit, currency, _ = pending
                self._ledger_txn(
                    event.transfer_id, debit, credit, event.amount, currency,
                    event.posted_at_ns, stored.position, tx_rows,
                )  # fmt: skip
        elif isinstance(event, (PendingTransferVoided, PendingTransferExpired)):
            self._pending_take(cur, event.transfer_id)

    def _pending_take(
        self, cur: psycopg.Cursor[Any], transfer_id: int
    ) -> tuple[str, str, str, int] | None:
        if self.fresh:
            row = self._pending.pop(transfer_id, None)
            return None if row is None else (row[1], row[2], row[3], row[4])
        return rm.pending_take(cur, transfer_id, self.schema)

    def _ledger_txn(
        self,
        transfer_id: int,
        debit: str,
        credit: str,
        amount: int,
        currency: str,
        at_ns: int,
        position: int,
        tx_rows: list[tuple[Any, ...]],
    ) -> None:
        if amount <= 0:
            return  # a zero-amount transfer (a TigerBeetle-style marker) moves no money
        rates = self.engine.rates
        if not rates.has(currency):
            self.unmonitored += 1
            return
        txn = Txn(
            at_ns,
            f"{LEDGER_PREFIX}{transfer_id}",
            debit,
            credit,
            rates.to_usd_minor(amount, currency),
            amount,
            currency,
            "ledger",
            "transfer",
            "",
            "",
            "",
            "",
            position,
        )
        self._monitor(txn, "ledger", {}, tx_rows)

    def _reference(self, cur: psycopg.Cursor[Any], position: int, event: AmlEvent) -> None:
        payload = event.to_payload()
        if isinstance(event, RuleChanged):
            self.engine.set_rule(definition_of(event))
            rm.upsert_rule(cur, payload, position, self.schema)
            kind = "rule"
        elif isinstance(event, RatesSet):
            self.engine.set_rates(RateTable.of(event.rates))
            rm.replace_rates(cur, event.rates, position, self.schema)
            kind = "rates"
        else:
            assert isinstance(event, AccountProfileRecorded)
            self.engine.set_profile(profile_of(event))
            self._profiles[event.account] = (payload, position)  # written once per batch
            kind = "profile"
        self._inputs.append((position, kind, payload))

    # ------------------------------------------------------------------ sanctions

    def _screen_counterparties(
        self, cur: psycopg.Cursor[Any], txn: Txn, extra: dict[str, Any], stored: StoredEvent
    ) -> None:
        if self.screener.empty:
            return
        for field, side in NAME_FIELDS:
            name = extra.get(field)
            if isinstance(name, str) and name:
                account = txn.src if side == "src" else txn.dst
                self._screen_name(cur, account, name, stored, [txn])

    def _screen_name(
        self,
        cur: psycopg.Cursor[Any],
        account: str,
        name: str,
        stored: StoredEvent,
        txns: list[Txn],
    ) -> None:
        cfg = self.engine.rule("sanctions")
        if cfg is None or not cfg.enabled or self.screener.empty:
            return
        hit = self.screener.screen(name, cfg.min_similarity, cfg.min_name_length)
        if hit is None:
            return
        alert_id = hashlib.sha256(
            f"{cfg.rule_id}|{account}|{hit.list_id}:{hit.uid}".encode()
        ).hexdigest()[:32]
        row = self._alerts.get(alert_id) or _existing_alert(cur, alert_id, self.schema)
        cited = sorted({*(row["transaction_ids"] if row else ()), *(t.tx_id for t in txns)})
        at = max([t.ts_ns for t in txns] or [stored.recorded_at_ns])
        profile = self.engine.profiles.get(account)
        risk = profile.risk_rating if profile is not None else "low"
        score, scoring = score_of(
            cfg.weight, risk if risk in RISK_ORDER else "low", 0, self.engine.scoring
        )
        self._alerts[alert_id] = {
            "alert_id": alert_id,
            "typology": "sanctions",
            "category": "sanctions",
            "rule_id": cfg.rule_id,
            "rule_version": row["rule_version"] if row else cfg.version,
            "subject": account,
            "episode": f"{hit.list_id}:{hit.uid}",
            "score": score,
            "account_ids": [account],
            "transaction_ids": cited,
            "features": {
                "similarity": hit.similarity,
                "screened_name": name,
                "listed_name": hit.listed_name,
                "list_id": hit.list_id,
                "list_version": hit.version,
                "entry_uid": hit.uid,
                "labels": ["name_match"],
                **scoring,
            },
            "raised_event_ts": row["raised_event_ts"] if row else at,
            "updated_event_ts": max(at, row["updated_event_ts"]) if row else at,
            "position": max(stored.position, row["position"]) if row else stored.position,
            "status": "open",
        }

    # ------------------------------------------------------------------ cases

    def _case(
        self,
        cur: psycopg.Cursor[Any],
        stored: StoredEvent,
        event: AmlEvent,
        cases: dict[str, tuple[Case, int]],
    ) -> None:
        case_id = str(getattr(event, "case_id", ""))
        known = cases.get(case_id)
        case = known[0] if known else _load_case(cur, case_id, self.schema) or Case(case_id)
        case.replay([event])
        cases[case_id] = (case, stored.position)

    # ------------------------------------------------------------------ warm-up

    def _progress(self, cur: psycopg.Cursor[Any]) -> int:
        row = cur.execute(
            f"SELECT position FROM {self.schema}.aml_progress WHERE id = 1"
        ).fetchone()
        if row is None:
            return 0
        return int(row["position"] if isinstance(row, dict) else row[0])

    def _new_engine(self) -> Engine:
        if self.hot_accounts <= 0:
            return Engine()
        return Engine(windows=Windows(SpillFile(), self.hot_accounts))

    def _restored(self, cur: psycopg.Cursor[Any], upto: int) -> tuple[Engine, int]:
        """The engine of the checkpoint, if one fits (this code, at or before ``upto``), and
        its position; else a new engine at 0."""
        found = rm.read_checkpoint(cur, self.schema)
        if found is None or found[1] != ENGINE_CODE or found[0] > upto or self.hot_accounts <= 0:
            return self._new_engine(), 0
        position, _, rest, _ = found
        store = SpillFile()
        for chunk in rm.checkpoint_windows(cur, self.schema):
            store.save(chunk)
        return Engine.restore(rest, Windows(store, self.hot_accounts)), position

    def warm_up(self, cur: psycopg.Cursor[Any], upto: int) -> None:
        """Rebuild the engine up to ``upto`` (what the tables reflect): from its checkpoint
        and the journal after it, or from the whole journal."""
        engine, after = self._restored(cur, upto)
        self.since_checkpoint = 0
        self._base, self._written = (after or None), None
        if after:
            engine.accounts.take_changes()  # from the checkpoint on, changes are recorded
        for _, kind, item in rm.journal(cur, upto, self.schema, after=after):
            if kind == "tx":
                engine.observe(Txn(*_journal_txn(item)))
                self.since_checkpoint += 1
            elif kind == "rule":
                engine.set_rule(definition_of(RuleChanged(**_fields(RuleChanged, item))))
            elif kind == "rates":
                engine.set_rates(RateTable.of(item["rates"]))
            elif kind == "profile":
                engine.set_profile(
                    profile_of(AccountProfileRecorded(**_fields(AccountProfileRecorded, item)))
                )
        engine.drain()  # those alerts are in the table already
        self.engine = engine
        self.screener = Screener()
        self.screener.load_rows(rm.sanctions_entries(cur, self.schema))
        self._deltas = FlowDeltas()
        self._alerts = {}
        self.position = upto
        self.warm = True


CASE_EVENTS = (
    CaseOpened,
    CaseAlertsAdded,
    CaseAssigned,
    CaseNoteAdded,
    CaseEvidenceAttached,
    CaseEscalated,
    CaseClosed,
    CaseReopened,
    SarFiled,
)
_LEDGER_TOPICS = frozenset(
    {
        TransferCreated.TOPIC,
        PendingTransferPosted.TOPIC,
        PendingTransferVoided.TOPIC,
        PendingTransferExpired.TOPIC,
    }
)


def txn_row(txn: Txn, origin: str) -> tuple[Any, ...]:
    """``aml_transactions`` columns but ``extra``."""
    return (
        txn.position,
        txn.tx_id,
        txn.ts_ns,
        txn.src,
        txn.dst,
        txn.usd,
        txn.amount_minor,
        txn.currency,
        txn.channel,
        txn.kind,
        txn.from_country,
        txn.to_country,
        txn.conductor,
        txn.branch,
        origin,
    )


def _journal_txn(row: Sequence[Any]) -> tuple[Any, ...]:
    (position, tx_id, ts, src, dst, usd, amount, currency, channel, kind, fc, tc, cond, br) = row[
        :14
    ]
    i = sys.intern
    return (
        int(ts), str(tx_id), i(str(src)), i(str(dst)), int(usd), int(amount), i(str(currency)),
        i(str(channel)), i(str(kind)), i(str(fc)), i(str(tc)), i(str(cond)), i(str(br)),
        int(position),
    )  # fmt: skip


def compact(t: Txn) -> Txn:
    """``t`` with its account ids and codes interned: one string object for each, however
    many transactions the engine's windows hold (half a transaction's memory otherwise)."""
    i = sys.intern
    return Txn(
        t.ts_ns, t.tx_id, i(t.src), i(t.dst), t.usd, t.amount_minor, i(t.currency),
        i(t.channel), i(t.kind), i(t.from_country), i(t.to_country), i(t.conductor),
        i(t.branch), t.position,
    )  # fmt: skip


def _fields(cls: type[AmlEvent], payload: Any) -> dict[str, Any]:
    data = payload if isinstance(payload, dict) else json.loads(payload)
    names = cls.__dataclass_fields__
    return {k: v for k, v in data.items() if k in names}


def _existing_alert(cur: psycopg.Cursor[Any], alert_id: str, schema: str) -> dict[str, Any] | None:
    row = cur.execute(
        f"SELECT rule_version, transaction_ids, raised_event_ts, updated_event_ts, position"
        f" FROM {schema}.aml_alerts WHERE alert_id = %s",
        (alert_id,),
    ).fetchone()
    if row is None:
        return None
    values = tuple(row.values()) if isinstance(row, dict) else tuple(row)
    keys = ("rule_version", "transaction_ids", "raised_event_ts", "updated_event_ts", "position")
    return dict(zip(keys, values, strict=True))


def _case_row(case: Case, position: int) -> dict[str, Any]:
    return {
        "case_id": case.case_id,
        "status": case.status,
        "title": case.title,
        "assignee": case.assignee,
        "alert_ids": list(case.alert_ids),
        "disposition": case.disposition,
        "opened_by": case.opened_by,
        "opened_at_ns": case.opened_at_ns,
        "sar": case.sar,
        "notes": list(case.notes),
        "evidence": list(case.evidence),
        "trail": list(case.trail),
        "version": case.version,
        "position": position,
    }


def _load_case(cur: psycopg.Cursor[Any], case_id: str, schema: str) -> Case | None:
    row = cur.execute(
        f"SELECT status, title, assignee, alert_ids, disposition, opened_by, opened_at_ns, sar,"
        f" notes, evidence, trail, version FROM {schema}.aml_cases WHERE case_id = %s",
        (case_id,),
    ).fetchone()
    if row is None:
        return None
    v = tuple(row.values()) if isinstance(row, dict) else tuple(row)
    case = Case(case_id)
    case.status, case.title, case.assignee = str(v[0]), str(v[1]), str(v[2])
    case.alert_ids = tuple(v[3])
    case.disposition, case.opened_by, case.opened_at_ns = str(v[4]), str(v[5]), int(v[6])
    case.sar = v[7]
    case.notes, case.evidence, case.trail = tuple(v[8]), tuple(v[9]), tuple(v[10])
    case.version = int(v[11])
    return case


class Rebuild:
    """A rebuild into a fresh schema: the same projection, with the graph and the alerts
    copied in once at the end instead of upserted batch by batch, and the secondary indexes
    of the big tables built once after the load."""

    def __init__(self, cur: psycopg.Cursor[Any], schema: str) -> None:
        self._cur = cur
        self.projection = AmlProjection(schema, fresh=True)
        # The big tables are loaded empty: their secondary indexes are built once at the end.
        self._indexes = defer_indexes(cur, schema, rm.BULK_TABLES)

    def feed(self, events: Sequence[StoredEvent]) -> None:
        self.projection.apply(self._cur, events)

    def finish(self, *, indexes: bool = True) -> None:
        self.projection.finish(self._cur)
        if indexes:
            restore_indexes(self._cur, self._indexes)
        self._indexes = []
