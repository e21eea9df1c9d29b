"""AML commands and their handlers: ingest, reference data, rules, sanctions lists and cases.

Command ids (the idempotency keys):

* ``aml-tx:<id>``: one transaction (``POST /v1/aml/transactions``); a retry with the same body
  answers the first outcome, another body ``exists_with_different_<field>``;
* ``aml-batch:<sha256 of the batch>``: a batch of transactions; each item is recorded once
  by its own id (``aml-tx:<id>`` streams), so a transaction sent in two batches exists once;
* ``aml-accounts:<sha256>``, ``aml-rates:<sha256>``, ``aml-sanctions:<list>:<digest>``: loads of
  reference data (a repeat of the same content is answered as unchanged);
* ``aml-rule:<rule id>:<request id>``, ``aml-case:<case id>``,
  ``aml-case:<case id>:<request id>``: rule changes and case actions carry a client-chosen
  request id, as every command does.

Rejections that depend only on the request (malformed fields) or on state that may change
(no rate yet, a timestamp too far ahead, a case in the wrong state) are answered but not
recorded: the client may fix the cause and retry with the same id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from commands.context import CommandContext
from commands.processor import Command, Handler, Rejection, UnitOfWork, canonical_json
from domain.aggregate import Aggregate
from domain.aml import errors as e
from domain.aml.cases import Case
from domain.aml.cases import stream_id as case_stream
from domain.aml.events import (
    AccountProfileRecorded,
    AmlEvent,
    CaseOpened,
    RatesSet,
    RuleChanged,
    SanctionsListLoaded,
    TransactionRecorded,
    decode_event,
)
from domain.aml.rates import RateTable
from domain.aml.reference import (
    RATES_STREAM,
    AccountReference,
    Rates,
    parse_profile,
    profile_stream,
)
from domain.aml.rules import Rule
from domain.aml.rules import stream_id as rule_stream
from domain.aml.sanctions import SanctionsList
from domain.aml.sanctions import stream_id as sanctions_stream
from domain.aml.transactions import (
    COMPARED_FIELDS,
    MonitoredTransaction,
    parse_record,
)
from domain.aml.transactions import stream_id as tx_stream
from eventstore.model import RecordedCommand, StoredEvent

MAX_BATCH = 10_000
CASE_ACTIONS = (
    "assign",
    "note",
    "evidence",
    "add_alerts",
    "escalate",
    "close",
    "reopen",
    "file_sar",
)


class _Cmd(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecordTransactions(_Cmd):
    """Raw ingest records (validated by the domain, which keeps unknown fields)."""

    records: tuple[dict[str, Any], ...] = Field(min_length=1, max_length=MAX_BATCH)


class RecordAccounts(_Cmd):
    records: tuple[dict[str, Any], ...] = Field(min_length=1, max_length=MAX_BATCH)


class LoadRates(_Cmd):
    rates: dict[str, str] = Field(min_length=1)
    source: str = ""


class ChangeRule(_Cmd):
    rule_id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    request_id: str = Field(min_length=1, max_length=128)
    detector: str | None = None  # set: define a new rule running this detector
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool | None = None
    weight: int | None = None
    author: str
    reason: str


class LoadSanctions(_Cmd):
    list_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    source: str = ""
    entries: tuple[dict[str, Any], ...] = Field(min_length=1)


class OpenCase(_Cmd):
    case_id: str = Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")
    alert_ids: tuple[str, ...] = Field(min_length=1)
    title: str = ""
    by: str


class CaseAction(_Cmd):
    case_id: str = Field(min_length=1, max_length=128)
    request_id: str = Field(min_length=1, max_length=128)
    action: str
    by: str
    assignee: str = ""
    text: str = ""
    kind: str = ""
    reference: str = ""
    sha256: str = ""
    disposition: str = ""
    alert_ids: tuple[str, ...] = ()
    filing_reference: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


class NotRecorded(Exception):
    """A refusal that depends on the request, or on state that may change: not logged."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__(outcome.get("detail", ""))
        self.outcome = outcome


def _digest(payload: Any) -> str:
    return hashlib.sha256(canonical_json(payload)).hexdigest()[:32]


# ------------------------------------------------------------------ command construction


def transaction_command(record: dict[str, Any]) -> Command:
    cmd = RecordTransactions(records=(record,))
    tx_id = record.get("id")
    return Command.create(f"aml-tx:{tx_id}", "aml.record_transactions", cmd, cmd.model_dump())


def batch_command(records: Sequence[dict[str, Any]]) -> Command:
    cmd = RecordTransactions(records=tuple(records))
    payload = cmd.model_dump()
    return Command.create(f"aml-batch:{_digest(payload)}", "aml.record_transactions", cmd, payload)


def accounts_command(records: Sequence[dict[str, Any]]) -> Command:
    cmd = RecordAccounts(records=tuple(records))
    payload = cmd.model_dump()
    return Command.create(f"aml-accounts:{_digest(payload)}", "aml.record_accounts", cmd, payload)


def rates_command(rates: dict[str, str], source: str = "") -> Command:
    cmd = LoadRates(rates=rates, source=source)
    payload = cmd.model_dump()
    return Command.create(f"aml-rates:{_digest(payload)}", "aml.load_rates", cmd, payload)


def rule_command(cmd: ChangeRule) -> Command:
    return Command.create(
        f"aml-rule:{cmd.rule_id}:{cmd.request_id}", "aml.change_rule", cmd, cmd.model_dump()
    )


def sanctions_command(cmd: LoadSanctions) -> Command:
    payload = cmd.model_dump()
    return Command.create(
        f"aml-sanctions:{cmd.list_id}:{_digest(payload)}", "aml.load_sanctions", cmd, payload
    )


def open_case_command(cmd: OpenCase) -> Command:
    return Command.create(f"aml-case:{cmd.case_id}", "aml.open_case", cmd, cmd.model_dump())


def case_action_command(cmd: CaseAction) -> Command:
    return Command.create(
        f"aml-case:{cmd.case_id}:{cmd.request_id}", "aml.case_action", cmd, cmd.model_dump()
    )


# ------------------------------------------------------------------ views


def case_view(case: Case) -> dict[str, Any]:
    return {
        "case_id": case.case_id,
        "status": case.status,
        "title": case.title,
        "alert_ids": list(case.alert_ids),
        "assignee": case.assignee,
        "disposition": case.disposition,
        "opened_by": case.opened_by,
        "notes": list(case.notes),
        "evidence": list(case.evidence),
        "sar": case.sar,
        "version": case.version,
    }


# ------------------------------------------------------------------ handlers


def _rates(uow: UnitOfWork) -> RateTable:
    agg = uow.get(RATES_STREAM)
    return agg.table if isinstance(agg, Rates) else RateTable.of({})


def _item(index: int, record: Any, status: str, **extra: Any) -> dict[str, Any]:
    tx_id = record.get("id") if isinstance(record, dict) else None
    return {"index": index, "id": tx_id, "status": status, **extra}


def build_handlers(clock: Callable[[], int], max_future_s: int = 86_400) -> dict[str, Handler]:  # noqa: PLR0915 - one closure per command
    def record_transactions(uow: UnitOfWork, cmd: RecordTransactions) -> dict[str, Any]:
        rates = _rates(uow)
        now = clock()
        results = []
        for index, record in enumerate(cmd.records):
            try:
                spec = parse_record(record)
                existing = uow.get(tx_stream(spec.tx_id))
                tx = MonitoredTransaction.record(spec, existing, rates, now, max_future_s)
            except e.Exists:
                results.append(_item(index, record, "exists"))
                continue
            except e.AmlRejection as exc:
                results.append(_item(index, record, exc.code, problem=exc.to_outcome()))
                continue
            uow.add(tx)
            results.append(_item(index, record, "created"))
        if len(cmd.records) == 1 and results[0]["status"] not in ("created", "exists"):
            raise NotRecorded(results[0]["problem"])  # a single transaction: its own answer
        return {
            "status": "recorded",
            "created": sum(1 for r in results if r["status"] == "created"),
            "results": results,
        }

    def record_accounts(uow: UnitOfWork, cmd: RecordAccounts) -> dict[str, Any]:
        now = clock()
        results: list[dict[str, Any]] = []
        for index, record in enumerate(cmd.records):
            account = record.get("account") if isinstance(record, dict) else None
            try:
                profile = parse_profile(record)
                existing = uow.get(profile_stream(profile.account))
                uow.add(AccountReference.record(profile, existing, now))
            except e.Exists:
                results.append({"index": index, "account": account, "status": "unchanged"})
                continue
            except e.AmlRejection as exc:
                results.append(
                    {
                        "index": index,
                        "account": account,
                        "status": exc.code,
                        "problem": exc.to_outcome(),
                    }
                )
                continue
            results.append({"index": index, "account": account, "status": "recorded"})
        if len(cmd.records) == 1 and "problem" in results[0]:
            raise NotRecorded(results[0]["problem"])
        return {"status": "recorded", "results": results}

    def load_rates(uow: UnitOfWork, cmd: LoadRates) -> dict[str, Any]:
        existing = uow.get(RATES_STREAM)
        try:
            agg = Rates.load(cmd.rates, existing, cmd.source, clock())
        except e.Exists:
            return {"status": "unchanged", "rates": _rates(uow).to_payload()}
        except e.AmlRejection as exc:
            raise NotRecorded(exc.to_outcome()) from None
        uow.add(agg)
        return {"status": "loaded", "rates": agg.table.to_payload()}

    def change_rule(uow: UnitOfWork, cmd: ChangeRule) -> dict[str, Any]:
        existing = uow.get(rule_stream(cmd.rule_id))
        now = clock()
        try:
            if cmd.detector is not None:
                rule = Rule.define(
                    cmd.rule_id,
                    cmd.detector,
                    cmd.params,
                    existing,
                    cmd.author,
                    cmd.reason,
                    now,
                    enabled=True if cmd.enabled is None else cmd.enabled,
                    weight=cmd.weight,
                )
            else:
                rule = existing if isinstance(existing, Rule) else Rule(cmd.rule_id)
                rule.change(
                    cmd.params, cmd.author, cmd.reason, now, enabled=cmd.enabled, weight=cmd.weight
                )
        except e.AmlRejection as exc:
            raise NotRecorded(exc.to_outcome()) from None
        uow.add(rule)
        assert rule.definition is not None
        return {"status": "changed", "rule": rule.definition.to_payload()}

    def load_sanctions(uow: UnitOfWork, cmd: LoadSanctions) -> dict[str, Any]:
        existing = uow.get(sanctions_stream(cmd.list_id))
        try:
            agg = SanctionsList.load(cmd.list_id, cmd.entries, cmd.source, existing, clock())
        except e.Exists:
            current = existing if isinstance(existing, SanctionsList) else None
            return {
                "status": "unchanged",
                "list_id": cmd.list_id,
                "version": current.list_version if current else 0,
            }
        except e.AmlRejection as exc:
            raise NotRecorded(exc.to_outcome()) from None
        uow.add(agg)
        return {
            "status": "loaded",
            "list_id": cmd.list_id,
            "version": agg.list_version,
            "entries": len(agg.entries),
            "digest": agg.digest,
        }

    def open_case(uow: UnitOfWork, cmd: OpenCase) -> dict[str, Any]:
        existing = uow.get(case_stream(cmd.case_id))
        try:
            case = Case.open(cmd.case_id, cmd.alert_ids, cmd.title, cmd.by, existing, clock())
        except e.AmlRejection as exc:
            raise NotRecorded(exc.to_outcome()) from None
        uow.add(case)
        return {"status": "opened", "case": case_view(case)}

    def case_action(uow: UnitOfWork, cmd: CaseAction) -> dict[str, Any]:
        case = uow.get(case_stream(cmd.case_id))
        if not isinstance(case, Case):
            raise NotRecorded(
                e.CaseNotFound(f"no case {cmd.case_id}", case_id=cmd.case_id).to_outcome()
            )
        now = clock()
        try:
            _act(case, cmd, now)
        except e.AmlRejection as exc:
            raise NotRecorded(exc.to_outcome()) from None
        return {"status": cmd.action, "case": case_view(case)}

    return {
        "aml.record_transactions": record_transactions,
        "aml.record_accounts": record_accounts,
        "aml.load_rates": load_rates,
        "aml.change_rule": change_rule,
        "aml.load_sanctions": load_sanctions,
        "aml.open_case": open_case,
        "aml.case_action": case_action,
    }


def _act(case: Case, cmd: CaseAction, now: int) -> None:
    by = cmd.by
    if cmd.action == "assign":
        case.assign(cmd.assignee, by, now)
    elif cmd.action == "note":
        case.add_note(cmd.text, by, now)
    elif cmd.action == "evidence":
        case.attach_evidence(cmd.kind, cmd.reference, cmd.sha256, cmd.text, by, now)
    elif cmd.action == "add_alerts":
        case.add_alerts(cmd.alert_ids, by, now)
    elif cmd.action == "escalate":
        case.escalate(cmd.text, by, now)
    elif cmd.action == "close":
        case.close(cmd.disposition, cmd.text, by, now)
    elif cmd.action == "reopen":
        case.reopen(cmd.text, by, now)
    elif cmd.action == "file_sar":
        case.file_sar(cmd.filing_reference, cmd.text, by, now, cmd.details)
    else:
        raise InvalidCaseAction(
            f"action {cmd.action!r} is not one of {', '.join(CASE_ACTIONS)}", case_id=cmd.case_id
        )


class InvalidCaseAction(e.AmlRejection):
    code = "invalid_case_action"


# ------------------------------------------------------------------ the context


def _streams_of(command: Command) -> list[str]:
    body = command.body
    if isinstance(body, RecordTransactions):
        streams = [RATES_STREAM]
        for record in body.records:
            tx_id = record.get("id") if isinstance(record, dict) else None
            if isinstance(tx_id, int) and not isinstance(tx_id, bool):
                tx_id = str(tx_id)
            if isinstance(tx_id, str) and tx_id:
                streams.append(tx_stream(tx_id))
        return streams
    if isinstance(body, RecordAccounts):
        return [
            profile_stream(r["account"])
            for r in body.records
            if isinstance(r, dict) and isinstance(r.get("account"), str) and r["account"]
        ]
    if isinstance(body, LoadRates):
        return [RATES_STREAM]
    if isinstance(body, ChangeRule):
        return [rule_stream(body.rule_id)]
    if isinstance(body, LoadSanctions):
        return [sanctions_stream(body.list_id)]
    if isinstance(body, (OpenCase, CaseAction)):
        return [case_stream(body.case_id)]
    return []


def encode(event: AmlEvent) -> tuple[str, bytes]:
    return event.TOPIC, canonical_json(event.to_payload())


def rebuild(aggregate: Aggregate | None, events: Sequence[StoredEvent]) -> Aggregate | None:
    decoded = [decode_event(s.topic, json.loads(s.payload)) for s in events]
    if aggregate is None and decoded:
        first, stream = decoded[0], events[0].stream_id
        if isinstance(first, TransactionRecorded):
            aggregate = MonitoredTransaction(first.tx_id)
        elif isinstance(first, AccountProfileRecorded):
            aggregate = AccountReference(first.account)
        elif isinstance(first, RatesSet):
            aggregate = Rates()
        elif isinstance(first, RuleChanged):
            aggregate = Rule(first.rule_id)
        elif isinstance(first, SanctionsListLoaded):
            aggregate = SanctionsList(first.list_id)
        elif isinstance(first, CaseOpened):
            aggregate = Case(first.case_id)
        else:
            raise ValueError(f"stream {stream} starts with {first.TOPIC}")
    if aggregate is not None:
        aggregate.replay(decoded)
    return aggregate


class IdConflict(Rejection):
    def __init__(self, code: str, detail: str, **ids: Any) -> None:
        super().__init__(detail, **ids)
        self.code = code


def on_payload_mismatch(known: RecordedCommand, command: Command) -> Rejection:
    """A re-used transaction id names the first field that differs (domain field order)."""
    ids = {"command_id": command.command_id}
    if known.command_type == "aml.record_transactions" and command.command_id.startswith("aml-tx:"):
        try:
            first = parse_record(json.loads(known.payload)["records"][0])
            new = parse_record(json.loads(command.payload)["records"][0])
        except (e.AmlRejection, KeyError, IndexError, TypeError):
            pass
        else:
            for attr, name in COMPARED_FIELDS:
                if getattr(first, attr) != getattr(new, attr):
                    return IdConflict(
                        f"exists_with_different_{name}",
                        f"transaction {first.tx_id} exists with another {name}",
                        tx_id=first.tx_id,
                    )
    return IdConflict(
        "exists_with_different_payload",
        f"{command.command_id} was submitted before with a different body",
        **ids,
    )


def _to_outcome(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, NotRecorded):
        return exc.outcome
    if isinstance(exc, (e.AmlRejection, Rejection)):
        return exc.to_outcome()
    raise exc


def build_context(clock: Callable[[], int]) -> CommandContext:
    """The AML context's write side: monitored transactions, reference data, rules, cases."""
    return CommandContext(
        name="aml",
        handlers=build_handlers(clock),
        streams_of=_streams_of,
        stream_prefixes=(
            "aml-tx:",
            "aml-account:",
            "aml-rates:",
            "aml-rule:",
            "aml-sanctions:",
            "aml-case:",
        ),
        encode=encode,
        rebuild=rebuild,
        rejection_types=(e.AmlRejection, Rejection),
        invalid_types=(NotRecorded,),
        to_outcome=_to_outcome,
        on_payload_mismatch=on_payload_mismatch,
    )
