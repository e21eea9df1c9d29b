"""Clearing and settlement commands and their handlers: the application service.

Command ids (idempotency keys), all prefixed ``settlement:`` so they never meet the ledger's:
``participant:<id>``, ``limits:<id>:<request>``, ``status:<id>:<request>``, ``scheme:<id>``,
``admit:<scheme>:<participant>``, ``obligation:<id>``, ``obligation-batch:<digest of the
ids>``, ``cut-off:<cycle id>``,
``release:<scheme>:<request>``, ``unwind:<cycle id>:<participant>``, ``settle:<cycle id>``.
A retry with the same body gets the first outcome; the same id with another body gets
``exists_with_different_<field>`` (the first field that differs) or ``id_already_failed``.
Only obligations record their rejections (TigerBeetle's rule: a failed id never succeeds);
the other commands' ids name their target, so a refused cut-off, settle or unwind can be
asked again once the state allows it.

A cut-off is one command per cycle whoever asks (the operator or the schedule): its payload is
the cycle id alone, so the clock's duty and a manual cut-off never cut the same cycle twice.

Settle posts the hub instructions to the ledger in the same unit of work as the cycle's
``CycleSettled`` event: per currency one linked batch (pay-ins first, then pay-outs), all
currencies together or nothing. Instruction transfer ids come from
:func:`domain.settlement.service.instruction_transfer_id` (>= 2^126, derived, deterministic).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from commands.context import CommandContext
from commands.ledger import _Source as LedgerSource
from commands.processor import Command, Rejection, UnitOfWork, canonical_json
from domain.aggregate import Aggregate
from domain.ledger import errors as le
from domain.ledger import service as ledger_service
from domain.ledger.transfer import TransferSpec
from domain.money import InvalidAmount, MoneyError, is_currency, parse_major
from domain.settlement import errors as e
from domain.settlement import service
from domain.settlement.cycle import Cycle, Instruction, ObligationSpec
from domain.settlement.cycle import stream_id as cycle_stream
from domain.settlement.events import (
    CycleOpened,
    ParticipantRegistered,
    SchemeCreated,
    SettlementEvent,
    decode_event,
)
from domain.settlement.participant import Participant, ParticipantSpec
from domain.settlement.participant import stream_id as participant_stream
from domain.settlement.scheme import Scheme, SchemeSpec, cycle_id, parse_cycle_id
from domain.settlement.scheme import stream_id as scheme_stream
from eventstore.model import RecordedCommand, StoredEvent

Id = Field(ge=1)  # the domain refuses 2^128-1 and above by name (id_must_not_be_int_max)
PAY_IN_CODE = 9101  # ledger transfer code of a pay-in (net debtor -> hub)
PAY_OUT_CODE = 9102  # ledger transfer code of a pay-out (hub -> net creditor)


class _Cmd(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RegisterParticipant(_Cmd):
    id: int = Id
    name: str = Field(max_length=200)
    accounts: dict[str, int]
    caps: dict[str, str] = Field(default_factory=dict, description="major units")
    min_positions: dict[str, str] = Field(default_factory=dict, description="major units")
    max_positions: dict[str, str] = Field(default_factory=dict, description="major units")


class ChangeLimits(_Cmd):
    participant_id: int = Id
    caps: dict[str, str] = Field(default_factory=dict)
    min_positions: dict[str, str] = Field(default_factory=dict)
    max_positions: dict[str, str] = Field(default_factory=dict)
    request_id: str


class ChangeStatus(_Cmd):
    participant_id: int = Id
    status: str
    reason: str = Field(default="", max_length=500)
    request_id: str


class CreateScheme(_Cmd):
    id: int = Id
    name: str = Field(max_length=200)
    mode: str
    settlement_accounts: dict[str, int]
    cut_off_times_s: tuple[int, ...] = ()
    participants: tuple[int, ...] = ()


class AdmitParticipant(_Cmd):
    scheme_id: int = Id
    participant_id: int = Id


class SubmitObligation(_Cmd):
    id: int = Id
    scheme_id: int = Id
    payer_id: int = Id
    payee_id: int = Id
    currency: str
    amount: str = Field(description="major units, a decimal string; sign allowed (refused)")
    value_date: str | None = None
    reference: str = Field(default="", max_length=200)
    cycle_id: str | None = None


class SubmitObligationBatch(_Cmd):
    obligations: tuple[SubmitObligation, ...]


class CutOff(_Cmd):
    scheme_id: int = Id
    seq: int = Field(ge=1)
    trigger: str = "manual"


class Release(_Cmd):
    scheme_id: int = Id
    request_id: str


class Unwind(_Cmd):
    scheme_id: int = Id
    seq: int = Field(ge=1)
    participant_id: int = Id


class Settle(_Cmd):
    scheme_id: int = Id
    seq: int = Field(ge=1)


class NotRecorded(Exception):
    """A refusal of the request's shape: answered, not logged; the id may be reused."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__(outcome.get("detail", ""))
        self.outcome = outcome


# Rules about the request itself (its shape), not about state: not recorded.
SHAPE_RULES = frozenset(
    {
        "id_must_not_be_zero",
        "id_must_not_be_int_max",
        "amount_must_be_positive",
        "amount_too_large",
        "payer_must_differ_from_payee",
        "unknown_currency",
        "value_date_invalid",
        "name_must_not_be_empty",
        "cap_must_not_be_negative",
        "position_bounds_must_include_zero",
        "limit_without_account",
        "unknown_mode",
        "currencies_must_not_be_empty",
        "cut_off_time_invalid",
        "unknown_status",
    }
)


def _recorded_unless_shape(exc: e.SettlementRejection) -> Exception:
    return NotRecorded(exc.to_outcome()) if exc.code in SHAPE_RULES else exc


# ------------------------------------------------------------------ command construction


def _request_id(given: str | None) -> str:
    return given if given else uuid.uuid4().hex


def register_command(cmd: RegisterParticipant) -> Command:
    return Command.create(
        f"settlement:participant:{cmd.id}",
        "settlement.register_participant",
        cmd,
        cmd.model_dump(),
    )


def limits_command(cmd: ChangeLimits) -> Command:
    payload = cmd.model_dump(exclude={"request_id"})
    return Command.create(
        f"settlement:limits:{cmd.participant_id}:{cmd.request_id}",
        "settlement.change_limits",
        cmd,
        payload,
    )


def status_command(cmd: ChangeStatus) -> Command:
    payload = cmd.model_dump(exclude={"request_id"})
    return Command.create(
        f"settlement:status:{cmd.participant_id}:{cmd.request_id}",
        "settlement.change_status",
        cmd,
        payload,
    )


def scheme_command(cmd: CreateScheme) -> Command:
    return Command.create(
        f"settlement:scheme:{cmd.id}", "settlement.create_scheme", cmd, cmd.model_dump()
    )


def admit_command(cmd: AdmitParticipant) -> Command:
    return Command.create(
        f"settlement:admit:{cmd.scheme_id}:{cmd.participant_id}",
        "settlement.admit_participant",
        cmd,
        cmd.model_dump(),
    )


def obligation_command(cmd: SubmitObligation) -> Command:
    return Command.create(
        f"settlement:obligation:{cmd.id}",
        "settlement.submit_obligation",
        cmd,
        cmd.model_dump(),
    )


def obligation_batch_command(cmd: SubmitObligationBatch) -> Command:
    """One command for many obligations (a clearing file): one event per obligation, one
    command-log entry for the batch, keyed by a digest of its obligation ids."""
    ids = ",".join(str(o.id) for o in cmd.obligations)
    digest = hashlib.sha256(ids.encode()).hexdigest()[:32]
    return Command.create(
        f"settlement:obligation-batch:{digest}",
        "settlement.submit_obligation_batch",
        cmd,
        cmd.model_dump(),
    )


def cut_off_command(cmd: CutOff) -> Command:
    cid = cycle_id(cmd.scheme_id, cmd.seq)
    return Command.create(f"settlement:cut-off:{cid}", "settlement.cut_off", cmd, {"cycle_id": cid})


def release_command(cmd: Release) -> Command:
    return Command.create(
        f"settlement:release:{cmd.scheme_id}:{cmd.request_id}",
        "settlement.release",
        cmd,
        {"scheme_id": cmd.scheme_id},
    )


def unwind_command(cmd: Unwind) -> Command:
    cid = cycle_id(cmd.scheme_id, cmd.seq)
    return Command.create(
        f"settlement:unwind:{cid}:{cmd.participant_id}",
        "settlement.unwind",
        cmd,
        {"cycle_id": cid, "participant_id": cmd.participant_id},
    )


def settle_command(cmd: Settle) -> Command:
    cid = cycle_id(cmd.scheme_id, cmd.seq)
    return Command.create(f"settlement:settle:{cid}", "settlement.settle", cmd, {"cycle_id": cid})


def new_request_id() -> str:
    return _request_id(None)


# ------------------------------------------------------------------ amounts at the edge


_PLAIN_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")


def parse_signed(text: str, currency: str, **ids: Any) -> int:
    """A decimal string in major units to minor units. A leading ``-`` is read (the domain
    refuses non-positive amounts by name); with an unknown currency the digits are read as
    they are (the domain then names the currency)."""
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    try:
        if is_currency(currency):
            amount = parse_major(digits, currency)
        elif _PLAIN_DECIMAL.fullmatch(digits):
            amount = int(digits.replace(".", ""))
        else:
            raise InvalidAmount(f"amount {text!r} is not a plain decimal string such as '12.34'")
    except MoneyError as exc:
        raise NotRecorded({"code": exc.code, "detail": str(exc), **ids}) from None
    return -amount if negative else amount


def _limits(values: dict[str, str], participant_id: int) -> dict[str, int]:
    return {
        currency: parse_signed(text, currency, participant_id=participant_id)
        for currency, text in values.items()
    }


# ------------------------------------------------------------------ views


def participant_view(p: Participant) -> dict[str, Any]:
    return {
        "id": p.participant_id,
        "name": p.name,
        "status": p.status,
        "accounts": dict(p.accounts),
        "caps_minor": dict(p.caps_minor),
        "min_positions_minor": dict(p.min_positions_minor),
        "max_positions_minor": dict(p.max_positions_minor),
    }


def scheme_view(s: Scheme) -> dict[str, Any]:
    return {
        "id": s.scheme_id,
        "name": s.name,
        "mode": s.mode,
        "currencies": list(s.currencies),
        "settlement_accounts": dict(s.settlement_accounts),
        "cut_off_times_s": list(s.cut_off_times_s),
        "participants": sorted(s.members),
        "open_cycle_id": cycle_id(s.scheme_id, s.open_seq),
    }


def cycle_view(c: Cycle) -> dict[str, Any]:
    return {
        "id": c.cycle_id,
        "scheme_id": c.scheme_id,
        "seq": c.seq,
        "mode": c.mode,
        "state": c.state,
        "value_date": c.value_date,
        "cut_off_at_ns": c.cut_off_at_ns,
        "totals": {cur: c.totals(cur).to_payload() for cur in c.currencies},
    }


# ------------------------------------------------------------------ unit of work adapter


class _Source:
    """The domain's ``SettlementSource`` over the processor's unit of work."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def get_participant(self, participant_id: int) -> Participant | None:
        agg = self._uow.get(participant_stream(participant_id))
        return agg if isinstance(agg, Participant) else None

    def get_scheme(self, scheme_id: int) -> Scheme | None:
        agg = self._uow.get(scheme_stream(scheme_id))
        return agg if isinstance(agg, Scheme) else None

    def get_cycle(self, scheme_id: int, seq: int) -> Cycle | None:
        agg = self._uow.get(cycle_stream(scheme_id, seq))
        return agg if isinstance(agg, Cycle) else None

    def add(self, aggregate: Aggregate) -> None:
        self._uow.add(aggregate)


def encode(event: SettlementEvent) -> tuple[str, bytes]:
    return event.TOPIC, canonical_json(event.to_payload())


def rebuild(aggregate: Aggregate | None, events: Sequence[StoredEvent]) -> Aggregate | None:
    decoded = [decode_event(s.topic, json.loads(s.payload)) for s in events]
    if aggregate is None and decoded:
        first = decoded[0]
        if isinstance(first, ParticipantRegistered):
            aggregate = Participant(first.participant_id)
        elif isinstance(first, SchemeCreated):
            aggregate = Scheme(first.scheme_id)
        elif isinstance(first, CycleOpened):
            aggregate = Cycle(first.scheme_id, first.seq)
        else:
            raise ValueError(f"stream {events[0].stream_id} starts with {first.TOPIC}")
    if aggregate is not None:
        aggregate.replay(decoded)
    return aggregate


def restore(stream_id: str, version: int, state: dict[str, Any]) -> Aggregate:
    """An aggregate from its snapshot (``to_snapshot``); the processor replays the tail."""
    kind = stream_id.split(":", 1)[0]
    if kind == "cycle":
        return Cycle.from_snapshot(stream_id, version, state)
    if kind == "scheme":
        return Scheme.from_snapshot(stream_id, version, state)
    return Participant.from_snapshot(stream_id, version, state)


# ------------------------------------------------------------------ settlement into the ledger


class LedgerPostingFailed(Rejection):
    """An instruction could not be posted for a reason other than funding."""

    code = "settlement_posting_failed"


def post_instructions(uow: UnitOfWork, instructions: list[Instruction], now_ns: int) -> None:
    """Post every instruction as a ledger transfer in this unit of work, or raise first.

    Every pay-in is checked against its account before anything is posted, so a shortfall
    names every debtor that cannot fund, not just the first.
    """
    ledger = LedgerSource(uow)
    short: list[dict[str, Any]] = []
    for ins in instructions:
        if ins.direction != "pay_in":
            continue
        account = ledger.get_account(ins.debit_account_id)
        if account is None:
            continue  # named below by the ledger itself (debit_account_not_found)
        try:
            account.check_can_take("debit", ins.amount_minor, ins.transfer_id)
        except le.LedgerRejection as exc:
            short.append(
                {
                    "participant_id": ins.participant_id,
                    "currency": ins.currency,
                    "amount_minor": ins.amount_minor,
                    "account_id": ins.debit_account_id,
                    "ledger_code": exc.code,
                }
            )
    if short:
        names = ", ".join(f"{s['participant_id']} ({s['currency']})" for s in short)
        raise e.FundingShortfall(
            f"cannot fund the pay-ins of {names}: fund their settlement accounts or unwind them",
            shortfalls=short,
        )
    for ins in instructions:
        debit = ledger.get_account(ins.debit_account_id)
        credit = ledger.get_account(ins.credit_account_id)
        ledger_id = debit.ledger if debit else credit.ledger if credit else 1
        spec = TransferSpec(
            ins.transfer_id,
            ins.debit_account_id,
            ins.credit_account_id,
            ins.amount_minor,
            ledger_id,
            PAY_IN_CODE if ins.direction == "pay_in" else PAY_OUT_CODE,
        )
        try:
            ledger_service.create_transfer(ledger, spec, now_ns)
        except le.LedgerRejection as exc:
            raise LedgerPostingFailed(
                f"instruction for participant {ins.participant_id} ({ins.currency} "
                f"{ins.direction}) refused by the ledger: {exc.code}: {exc.detail}",
                participant_id=ins.participant_id,
                currency=ins.currency,
                transfer_id=ins.transfer_id,
                ledger_code=exc.code,
            ) from None


# ------------------------------------------------------------------ handlers


def build_handlers(clock: Callable[[], int]) -> dict[str, Any]:
    def guarded(fn: Callable[[UnitOfWork, Any], dict[str, Any]], record: bool = False) -> Any:
        """Rejections of obligations (client-chosen ids) are recorded unless they are about
        the request's shape: a failed obligation id never succeeds later. Every other
        command's id names its target (a cycle to settle, a participant to admit), and the
        same command may succeed once the state allows it: its rejections are not recorded."""

        def run(uow: UnitOfWork, cmd: Any) -> dict[str, Any]:
            try:
                return fn(uow, cmd)
            except (e.SettlementRejection, Rejection) as exc:
                if record and isinstance(exc, e.SettlementRejection):
                    raise _recorded_unless_shape(exc) from None
                raise NotRecorded(exc.to_outcome()) from None

        return run

    def register(uow: UnitOfWork, cmd: RegisterParticipant) -> dict[str, Any]:
        spec = ParticipantSpec(
            cmd.id,
            cmd.name,
            dict(cmd.accounts),
            _limits(cmd.caps, cmd.id),
            _limits(cmd.min_positions, cmd.id),
            _limits(cmd.max_positions, cmd.id),
        )
        participant = service.register_participant(_Source(uow), spec, clock())
        return {"status": "registered", "participant": participant_view(participant)}

    def change_limits(uow: UnitOfWork, cmd: ChangeLimits) -> dict[str, Any]:
        pid = cmd.participant_id
        participant = service.change_limits(
            _Source(uow),
            pid,
            _limits(cmd.caps, pid),
            _limits(cmd.min_positions, pid),
            _limits(cmd.max_positions, pid),
            clock(),
        )
        return {"status": "changed", "participant": participant_view(participant)}

    def change_status(uow: UnitOfWork, cmd: ChangeStatus) -> dict[str, Any]:
        participant = service.change_status(
            _Source(uow), cmd.participant_id, cmd.status, cmd.reason, clock()
        )
        return {"status": "changed", "participant": participant_view(participant)}

    def create_scheme(uow: UnitOfWork, cmd: CreateScheme) -> dict[str, Any]:
        spec = SchemeSpec(
            cmd.id,
            cmd.name,
            cmd.mode,
            dict(cmd.settlement_accounts),
            tuple(cmd.cut_off_times_s),
            tuple(cmd.participants),
        )
        scheme, cycle = service.create_scheme(_Source(uow), spec, clock())
        return {"status": "created", "scheme": scheme_view(scheme), "cycle": cycle_view(cycle)}

    def admit(uow: UnitOfWork, cmd: AdmitParticipant) -> dict[str, Any]:
        scheme = service.admit_participant(_Source(uow), cmd.scheme_id, cmd.participant_id, clock())
        return {"status": "admitted", "scheme": scheme_view(scheme)}

    def submit(uow: UnitOfWork, cmd: SubmitObligation, now: int | None = None) -> dict[str, Any]:
        amount = parse_signed(cmd.amount, cmd.currency, obligation_id=cmd.id)
        spec = ObligationSpec(
            cmd.id,
            cmd.scheme_id,
            cmd.payer_id,
            cmd.payee_id,
            cmd.currency,
            amount,
            cmd.value_date,
            cmd.reference,
            cmd.cycle_id,
        )
        done = service.submit_obligation(_Source(uow), spec, clock() if now is None else now)
        late = done.late_cut_off
        return {
            "status": done.status,
            "obligation_id": cmd.id,
            "cycle_id": done.cycle.cycle_id,
            "value_date": cmd.value_date or done.cycle.value_date,
            "amount_minor": amount,
            "released": done.released,
            "late_cut_off": cycle_id(late.scheme_id, late.seq) if late else None,
        }

    def submit_batch(uow: UnitOfWork, cmd: SubmitObligationBatch) -> dict[str, Any]:
        """Each obligation in order with its own outcome; a refused one changes nothing."""
        now = clock()
        results: list[dict[str, Any]] = []
        for index, item in enumerate(cmd.obligations):
            try:
                results.append({"index": index, **submit(uow, item, now)})
            except (e.SettlementRejection, NotRecorded) as exc:
                outcome = exc.outcome if isinstance(exc, NotRecorded) else exc.to_outcome()
                results.append({"index": index, "obligation_id": item.id, **outcome})
        return {"status": "submitted", "results": results}

    def cut_off(uow: UnitOfWork, cmd: CutOff) -> dict[str, Any]:
        event, following = service.cut_off(
            _Source(uow), cmd.scheme_id, cmd.seq, clock(), cmd.trigger
        )
        return {
            "status": "cut_off",
            "cycle_id": cycle_id(cmd.scheme_id, cmd.seq),
            "trigger": event.trigger,
            "positions": event.positions,
            "totals": event.totals,
            "released": event.released,
            "dropped": event.dropped,
            "breaches": event.breaches,
            "next_cycle_id": following.cycle_id,
        }

    def release(uow: UnitOfWork, cmd: Release) -> dict[str, Any]:
        cycle, released = service.release(_Source(uow), cmd.scheme_id, clock())
        return {"status": "released", "cycle_id": cycle.cycle_id, "released": released}

    def unwind(uow: UnitOfWork, cmd: Unwind) -> dict[str, Any]:
        event = service.unwind(_Source(uow), cmd.scheme_id, cmd.seq, cmd.participant_id, clock())
        return {
            "status": "unwound",
            "cycle_id": cycle_id(cmd.scheme_id, cmd.seq),
            "participant_id": cmd.participant_id,
            "removed_gross": event.removed_gross,
            "changes": event.changes,
            "debit_increases": event.debit_increases,
            "totals": event.totals,
            "breaches": event.breaches,
        }

    def settle(uow: UnitOfWork, cmd: Settle) -> dict[str, Any]:
        src = _Source(uow)
        now = clock()
        cycle, instructions = service.plan_settlement(src, cmd.scheme_id, cmd.seq)
        post_instructions(uow, instructions, now)  # raises before the cycle changes
        cycle.settle(instructions, now)
        return {
            "status": "settled",
            "cycle_id": cycle.cycle_id,
            "instructions": [i.to_payload() for i in instructions],
        }

    return {
        "settlement.register_participant": guarded(register),
        "settlement.change_limits": guarded(change_limits),
        "settlement.change_status": guarded(change_status),
        "settlement.create_scheme": guarded(create_scheme),
        "settlement.admit_participant": guarded(admit),
        "settlement.submit_obligation": guarded(submit, record=True),
        "settlement.submit_obligation_batch": guarded(submit_batch),
        "settlement.cut_off": guarded(cut_off),
        "settlement.release": guarded(release),
        "settlement.unwind": guarded(unwind),
        "settlement.settle": guarded(settle),
    }


def _streams_of(command: Command) -> list[str]:
    body = command.body
    if isinstance(body, RegisterParticipant):
        return [participant_stream(body.id)]
    if isinstance(body, ChangeLimits | ChangeStatus):
        return [participant_stream(body.participant_id)]
    if isinstance(body, CreateScheme):
        return [scheme_stream(body.id), *(participant_stream(p) for p in body.participants)]
    if isinstance(body, AdmitParticipant):
        return [scheme_stream(body.scheme_id), participant_stream(body.participant_id)]
    if isinstance(body, SubmitObligation):
        # The open cycle is read lazily (the scheme says which one it is).
        return [
            scheme_stream(body.scheme_id),
            participant_stream(body.payer_id),
            participant_stream(body.payee_id),
        ]
    if isinstance(body, SubmitObligationBatch):
        streams: dict[str, None] = {}
        for o in body.obligations:
            streams[scheme_stream(o.scheme_id)] = None
            streams[participant_stream(o.payer_id)] = None
            streams[participant_stream(o.payee_id)] = None
        return list(streams)
    if isinstance(body, CutOff | Settle):
        return [scheme_stream(body.scheme_id), cycle_stream(body.scheme_id, body.seq)]
    if isinstance(body, Unwind):
        return [
            scheme_stream(body.scheme_id),
            cycle_stream(body.scheme_id, body.seq),
            participant_stream(body.participant_id),
        ]
    return [scheme_stream(body.scheme_id)]


_FIELD_ORDER: dict[str, tuple[str, ...]] = {
    "settlement.submit_obligation": (
        "scheme_id",
        "payer_id",
        "payee_id",
        "currency",
        "amount",
        "value_date",
        "reference",
        "cycle_id",
    ),
    "settlement.register_participant": (
        "name",
        "accounts",
        "caps",
        "min_positions",
        "max_positions",
    ),
    "settlement.create_scheme": (
        "name",
        "mode",
        "settlement_accounts",
        "cut_off_times_s",
        "participants",
    ),
}


class IdConflict(Rejection):
    """The id was used before with another body; ``code`` names the first differing field."""

    def __init__(self, code: str, detail: str, **ids: Any) -> None:
        super().__init__(detail, **ids)
        self.code = code


def on_payload_mismatch(known: RecordedCommand, command: Command) -> Rejection:
    ids = {"command_id": command.command_id}
    if not known.accepted:
        return IdConflict(
            "id_already_failed",
            f"{command.command_id} was rejected before; a failed id never succeeds, use a new id",
            **ids,
        )
    first, new = json.loads(known.payload), json.loads(command.payload)
    for name in _FIELD_ORDER.get(known.command_type, ()):
        if first.get(name) != new.get(name):
            return IdConflict(
                f"exists_with_different_{name}",
                f"{command.command_id} exists with a different {name}",
                **ids,
            )
    return IdConflict(
        "exists_with_different_payload",
        f"{command.command_id} was submitted before with a different body",
        **ids,
    )


def _to_outcome(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, NotRecorded):
        return exc.outcome
    if isinstance(exc, (e.SettlementRejection, Rejection)):
        return exc.to_outcome()
    raise exc


def build_context(clock: Callable[[], int]) -> CommandContext:
    """The settlement context's write side: participants, schemes, cycles."""
    return CommandContext(
        name="settlement",
        handlers=build_handlers(clock),
        streams_of=_streams_of,
        stream_prefixes=("participant:", "scheme:", "cycle:"),
        encode=encode,
        rebuild=rebuild,
        rejection_types=(e.SettlementRejection, Rejection),
        invalid_types=(NotRecorded,),
        to_outcome=_to_outcome,
        on_payload_mismatch=on_payload_mismatch,
        restore=restore,
    )


def parse_cycle(text: str) -> tuple[int, int] | None:
    """``<scheme>-<seq>`` to (scheme id, seq); ``None`` when malformed."""
    return parse_cycle_id(text)
