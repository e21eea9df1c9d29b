"""Transfer: a movement of an amount from a debit account to a credit account.

Definition
    A transfer has a client-chosen id, a debit and a credit account, an amount in minor units
    (0..2^128-1), a ledger, the accounts' currency, a code, three user_data fields, flags and a
    timestamp. A single-phase transfer posts at once. A pending transfer reserves the amount;
    it is later posted (in full or in part) or voided by a transfer of its own that names it
    (``pending_id`` with ``post_pending_transfer`` / ``void_pending_transfer``), or it expires
    when ``timeout_s`` (if non-zero) has passed since its timestamp. A balancing transfer
    moves at most its amount, as much as the accounts' balances allow. A closing transfer
    (pending) closes its account(s) until it is voided. A transfer that failed for a reason
    that depends on state (``debit_account_not_found``, ``exceeds_credits``, ...) is recorded
    as failed: its id is spent. Stream: ``transfer:<id>``.

Guarantees
    A transfer's fields never change; a pending transfer's state only moves
    pending -> posted | voided | expired, once; a transfer is reversed at most once.
    The deadline is exactly ``timestamp + timeout_s * 10**9`` on the ledger's clock.

Rejections
    See ``CREATE_TRANSFER_ORDER`` and ``POST_OR_VOID_ORDER`` in :mod:`domain.ledger.service`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from domain.aggregate import Aggregate
from domain.frozen import fast_frozen
from domain.invariant import invariant
from domain.ledger import errors as e
from domain.ledger.events import (
    PendingTransferExpired,
    PendingTransferPosted,
    PendingTransferVoided,
    SettlingTransferCreated,
    TransferCreated,
    TransferFailed,
    TransferReversed,
)

if TYPE_CHECKING:
    from collections.abc import Callable

NS_PER_S = 1_000_000_000
AMOUNT_MAX = 2**128 - 1  # a post of AMOUNT_MAX posts the whole pending amount (TigerBeetle)


def stream_id(transfer_id: int) -> str:
    return f"transfer:{transfer_id}"


@fast_frozen
@dataclass(frozen=True, slots=True)
class TransferSpec:
    transfer_id: int
    debit_account_id: int
    credit_account_id: int
    amount: int
    ledger: int
    code: int
    pending: bool = False
    timeout_s: int = 0
    pending_id: int = 0
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    linked: bool = False
    post_pending_transfer: bool = False
    void_pending_transfer: bool = False
    balancing_debit: bool = False
    balancing_credit: bool = False
    closing_debit: bool = False
    closing_credit: bool = False
    imported: bool = False
    timestamp_ns: int = 0  # only with ``imported``: when the transfer really happened
    reverses_id: int = 0  # set by the ledger for a reversal, never by a client

    @property
    def flags(self) -> tuple[bool, ...]:
        """Every flag, as TigerBeetle compares them (``exists_with_different_flags``)."""
        return (
            self.linked,
            self.pending,
            self.post_pending_transfer,
            self.void_pending_transfer,
            self.balancing_debit,
            self.balancing_credit,
            self.closing_debit,
            self.closing_credit,
            self.imported,
        )

    @property
    def settles(self) -> bool:
        return self.post_pending_transfer or self.void_pending_transfer


class Transfer(Aggregate):
    __slots__ = (
        "amount",
        "balancing_credit",
        "balancing_debit",
        "closing_credit",
        "closing_debit",
        "code",
        "created_at_ns",
        "credit_account_id",
        "currency",
        "debit_account_id",
        "failed_reason",
        "imported",
        "kind",
        "ledger",
        "linked",
        "pending",
        "pending_id",
        "posted_amount",
        "reversal_id",
        "reverses_id",
        "settled_by",
        "state",
        "timeout_s",
        "transfer_id",
        "user_data_32",
        "user_data_64",
        "user_data_128",
    )

    def __init__(self, transfer_id: int) -> None:
        super().__init__(stream_id(transfer_id))
        self.transfer_id = transfer_id
        self.debit_account_id = 0
        self.credit_account_id = 0
        self.amount = 0
        self.ledger = 0
        self.currency = ""
        self.code = 0
        self.pending = False
        self.timeout_s = 0
        self.created_at_ns = 0
        self.state = "new"
        self.posted_amount = 0
        self.kind = ""  # "" (single-phase or pending) | "post" | "void"
        self.pending_id = 0
        self.user_data_128 = 0
        self.user_data_64 = 0
        self.user_data_32 = 0
        self.linked = False
        self.balancing_debit = False
        self.balancing_credit = False
        self.closing_debit = False
        self.closing_credit = False
        self.imported = False
        self.failed_reason = ""
        self.settled_by = 0  # the post or void transfer that settled this pending one
        self.reverses_id = 0
        self.reversal_id = 0

    @property
    def deadline_ns(self) -> int | None:
        return self.created_at_ns + self.timeout_s * NS_PER_S if self.timeout_s else None

    @property
    def is_final(self) -> bool:
        return self.state in ("posted", "voided", "expired", "failed")

    @property
    def flags(self) -> tuple[bool, ...]:
        return (
            self.linked,
            self.pending,
            self.kind == "post",
            self.kind == "void",
            self.balancing_debit,
            self.balancing_credit,
            self.closing_debit,
            self.closing_credit,
            self.imported,
        )

    def is_expired_at(self, now_ns: int) -> bool:
        deadline = self.deadline_ns
        return self.state == "pending" and deadline is not None and now_ns >= deadline

    # ------------------------------------------------------------------ commands

    @classmethod
    def create(
        cls, spec: TransferSpec, currency: str, now_ns: int, amount: int | None = None
    ) -> Transfer:
        """A single-phase or pending transfer, stamped ``now_ns``, moving ``amount`` (the
        spec's unless a balancing transfer moves less)."""
        transfer = cls(spec.transfer_id)
        transfer._trigger(
            TransferCreated(
                spec.transfer_id,
                spec.debit_account_id,
                spec.credit_account_id,
                spec.amount if amount is None else amount,
                spec.ledger,
                currency,
                spec.code,
                spec.pending,
                spec.timeout_s,
                now_ns,
                spec.user_data_128,
                spec.user_data_64,
                spec.user_data_32,
                spec.linked,
                spec.balancing_debit,
                spec.balancing_credit,
                spec.closing_debit,
                spec.closing_credit,
                spec.imported,
                spec.reverses_id,
            )
        )
        return transfer

    @classmethod
    def create_settling(
        cls, spec: TransferSpec, pending: Transfer, amount: int, now_ns: int
    ) -> Transfer:
        """A post or void of ``pending``: its fields default to the pending transfer's."""
        transfer = cls(spec.transfer_id)
        transfer._trigger(
            SettlingTransferCreated(
                spec.transfer_id,
                pending.transfer_id,
                "post" if spec.post_pending_transfer else "void",
                pending.debit_account_id,
                pending.credit_account_id,
                amount,
                pending.ledger,
                pending.currency,
                pending.code,
                now_ns,
                spec.user_data_128 or pending.user_data_128,
                spec.user_data_64 or pending.user_data_64,
                spec.user_data_32 or pending.user_data_32,
                spec.linked,
                spec.imported,
            )
        )
        return transfer

    @classmethod
    def failed(cls, transfer_id: int, reason: str, now_ns: int) -> Transfer:
        """The record of a transfer that failed for a reason that depends on state."""
        transfer = cls(transfer_id)
        transfer._trigger(TransferFailed(transfer_id, reason, now_ns))
        return transfer

    def check_same(  # noqa: PLR0912 - TigerBeetle's order, field by field
        self, spec: TransferSpec, pending_of: Callable[[int], Transfer | None] | None = None
    ) -> None:
        """TigerBeetle's order for a re-submitted id: the first differing field wins.

        ``pending_of`` finds the pending transfer a post or void settled (its fields are the
        defaults the request may leave at zero).
        """
        ids = {"transfer_id": self.transfer_id}
        if self.state == "failed":
            raise e.IdAlreadyFailed(
                f"transfer {self.transfer_id} failed before ({self.failed_reason}); "
                "a failed id never succeeds: use a new id",
                reason=self.failed_reason,
                **ids,
            )
        if spec.flags != self.flags:
            raise e.ExistsWithDifferentFlags("transfer exists with other flags", **ids)
        if spec.pending_id != self.pending_id:
            raise e.ExistsWithDifferentPendingId(
                "transfer exists settling another pending transfer", **ids
            )
        if spec.timeout_s != self.timeout_s:
            raise e.ExistsWithDifferentTimeout("transfer exists with another timeout", **ids)
        if self.kind:
            pending = pending_of(self.pending_id) if pending_of is not None else None
            self._check_same_settling(spec, pending)
            return
        if spec.debit_account_id != self.debit_account_id:
            raise e.ExistsWithDifferentDebitAccountId(
                "transfer exists with another debit account", **ids
            )
        if spec.credit_account_id != self.credit_account_id:
            raise e.ExistsWithDifferentCreditAccountId(
                "transfer exists with another credit account", **ids
            )
        # A balancing transfer's amount is a maximum: any retry allowing at least what was
        # moved is the same transfer.
        if (
            (spec.amount < self.amount)
            if (spec.balancing_debit or spec.balancing_credit)
            else (spec.amount != self.amount)
        ):
            raise e.ExistsWithDifferentAmount("transfer exists with another amount", **ids)
        if spec.user_data_128 != self.user_data_128:
            raise e.ExistsWithDifferentUserData128(
                "transfer exists with another user_data_128", **ids
            )
        if spec.user_data_64 != self.user_data_64:
            raise e.ExistsWithDifferentUserData64(
                "transfer exists with another user_data_64", **ids
            )
        if spec.user_data_32 != self.user_data_32:
            raise e.ExistsWithDifferentUserData32(
                "transfer exists with another user_data_32", **ids
            )
        if spec.ledger != self.ledger:
            raise e.ExistsWithDifferentLedger("transfer exists on another ledger", **ids)
        if spec.code != self.code:
            raise e.ExistsWithDifferentCode("transfer exists with another code", **ids)
        if spec.reverses_id != self.reverses_id:
            raise e.ExistsWithDifferentReversesId(
                "transfer exists and reverses another transfer (or none)", **ids
            )

    def _check_same_settling(self, spec: TransferSpec, pending: Transfer | None) -> None:
        """A post or void retried: fields left at zero stand for the pending transfer's."""
        ids = {"transfer_id": self.transfer_id}
        if spec.debit_account_id and spec.debit_account_id != self.debit_account_id:
            raise e.ExistsWithDifferentDebitAccountId(
                "transfer exists with another debit account", **ids
            )
        if spec.credit_account_id and spec.credit_account_id != self.credit_account_id:
            raise e.ExistsWithDifferentCreditAccountId(
                "transfer exists with another credit account", **ids
            )
        pending_amount = pending.amount if pending is not None else self.amount
        if self.kind == "void":
            wanted = pending_amount if spec.amount == 0 else spec.amount
        else:
            wanted = pending_amount if spec.amount == AMOUNT_MAX else spec.amount
        if wanted != self.amount:
            raise e.ExistsWithDifferentAmount("transfer exists with another amount", **ids)
        for given, mine, inherited, kind in (
            (
                spec.user_data_128,
                self.user_data_128,
                pending.user_data_128 if pending else 0,
                e.ExistsWithDifferentUserData128,
            ),
            (
                spec.user_data_64,
                self.user_data_64,
                pending.user_data_64 if pending else 0,
                e.ExistsWithDifferentUserData64,
            ),
            (
                spec.user_data_32,
                self.user_data_32,
                pending.user_data_32 if pending else 0,
                e.ExistsWithDifferentUserData32,
            ),
        ):
            if (given or inherited) != mine:
                raise kind("transfer exists with other user data", **ids)
        if spec.ledger and spec.ledger != self.ledger:
            raise e.ExistsWithDifferentLedger("transfer exists on another ledger", **ids)
        if spec.code and spec.code != self.code:
            raise e.ExistsWithDifferentCode("transfer exists with another code", **ids)

    def check_open(self, now_ns: int) -> None:
        """The rules shared by post and void, in order."""
        ids = {"transfer_id": self.transfer_id}
        if not self.pending:
            raise e.PendingTransferNotPending(
                f"transfer {self.transfer_id} was not created as pending", **ids
            )
        self.check_still_pending(now_ns)

    def check_still_pending(self, now_ns: int) -> None:
        ids = {"transfer_id": self.transfer_id}
        if self.state == "posted":
            raise e.PendingTransferAlreadyPosted(
                f"transfer {self.transfer_id} was already posted", **ids
            )
        if self.state == "voided":
            raise e.PendingTransferAlreadyVoided(
                f"transfer {self.transfer_id} was already voided", **ids
            )
        if self.state == "expired" or self.is_expired_at(now_ns):
            raise e.PendingTransferExpired(f"transfer {self.transfer_id} has expired", **ids)

    def post(self, amount: int | None, now_ns: int, by_transfer_id: int = 0) -> int:
        self.check_open(now_ns)
        posted = self.amount if amount is None or amount == AMOUNT_MAX else amount
        if posted > self.amount:
            raise e.ExceedsPendingTransferAmount(
                f"cannot post {posted}: transfer {self.transfer_id} reserved {self.amount}",
                transfer_id=self.transfer_id,
            )
        self._trigger(PendingTransferPosted(self.transfer_id, posted, now_ns, by_transfer_id))
        return posted

    def void(self, now_ns: int, by_transfer_id: int = 0) -> None:
        self.check_open(now_ns)
        self._trigger(PendingTransferVoided(self.transfer_id, now_ns, by_transfer_id))

    def expire(self, now_ns: int) -> None:
        ids = {"transfer_id": self.transfer_id}
        if not self.pending:
            raise e.PendingTransferNotPending(f"transfer {self.transfer_id} is not pending", **ids)
        if self.state == "posted":
            raise e.PendingTransferAlreadyPosted(f"transfer {self.transfer_id} was posted", **ids)
        if self.state == "voided":
            raise e.PendingTransferAlreadyVoided(f"transfer {self.transfer_id} was voided", **ids)
        if self.state == "expired":
            raise e.PendingTransferExpired(f"transfer {self.transfer_id} already expired", **ids)
        if not self.is_expired_at(now_ns):
            raise e.PendingTransferNotExpired(
                f"transfer {self.transfer_id} has not reached its timeout", **ids
            )
        self._trigger(PendingTransferExpired(self.transfer_id, now_ns))

    def check_reversible(self) -> None:
        ids = {"transfer_id": self.transfer_id}
        if self.pending:
            raise e.PendingTransferCannotBeReversed(
                f"transfer {self.transfer_id} is pending: void it, or reverse its post", **ids
            )
        if self.kind == "void":
            raise e.VoidTransferCannotBeReversed(
                f"transfer {self.transfer_id} voided a hold and moved nothing", **ids
            )
        if self.reversal_id:
            raise e.TransferAlreadyReversed(
                f"transfer {self.transfer_id} was reversed by {self.reversal_id}",
                reversal_id=self.reversal_id,
                **ids,
            )

    def mark_reversed(self, reversal_id: int, reason: str, by: str, now_ns: int) -> None:
        self.check_reversible()
        self._trigger(TransferReversed(self.transfer_id, reversal_id, reason, by, now_ns))

    # ------------------------------------------------------------------ apply: assign only

    def apply(self, event: object) -> None:  # noqa: PLR0915 - assigns every field
        if isinstance(event, TransferCreated):
            self.debit_account_id = event.debit_account_id
            self.credit_account_id = event.credit_account_id
            self.amount = event.amount
            self.ledger = event.ledger
            self.currency = event.currency
            self.code = event.code
            self.pending = event.pending
            self.timeout_s = event.timeout_s
            self.created_at_ns = event.created_at_ns
            self.state = "pending" if event.pending else "posted"
            self.posted_amount = 0 if event.pending else event.amount
            self.user_data_128 = event.user_data_128
            self.user_data_64 = event.user_data_64
            self.user_data_32 = event.user_data_32
            self.linked = event.linked
            self.balancing_debit = event.balancing_debit
            self.balancing_credit = event.balancing_credit
            self.closing_debit = event.closing_debit
            self.closing_credit = event.closing_credit
            self.imported = event.imported
            self.reverses_id = event.reverses_id
        elif isinstance(event, SettlingTransferCreated):
            self.kind = event.kind
            self.pending_id = event.pending_id
            self.debit_account_id = event.debit_account_id
            self.credit_account_id = event.credit_account_id
            self.amount = event.amount
            self.ledger = event.ledger
            self.currency = event.currency
            self.code = event.code
            self.created_at_ns = event.created_at_ns
            self.state = "posted" if event.kind == "post" else "voided"
            self.posted_amount = event.amount if event.kind == "post" else 0
            self.user_data_128 = event.user_data_128
            self.user_data_64 = event.user_data_64
            self.user_data_32 = event.user_data_32
            self.linked = event.linked
            self.imported = event.imported
        elif isinstance(event, TransferFailed):
            self.state = "failed"
            self.failed_reason = event.reason
            self.created_at_ns = event.failed_at_ns
        elif isinstance(event, PendingTransferPosted):
            self.state = "posted"
            self.posted_amount = event.amount
            self.settled_by = event.by_transfer_id
        elif isinstance(event, PendingTransferVoided):
            self.state = "voided"
            self.settled_by = event.by_transfer_id
        elif isinstance(event, PendingTransferExpired):
            self.state = "expired"
        elif isinstance(event, TransferReversed):
            self.reversal_id = event.reversal_id
        else:  # pragma: no cover - a programming error
            invariant(False, f"Transfer cannot apply {type(event).__name__}")

    def approx_bytes(self) -> int:
        """Roughly the memory held: a slot holding a shared default (0, False, "") costs its
        pointer; TigerBeetle's fields are mostly at their defaults."""
        return self._shared_defaults_size()

    @classmethod
    def from_snapshot(cls, stream_id: str, version: int, state: dict[str, object]) -> Transfer:
        transfer = cls(int(stream_id.split(":", 1)[1]))
        for name in cls._state_slots():
            if name in state:
                setattr(transfer, name, state[name])
        transfer.version = version
        return transfer
