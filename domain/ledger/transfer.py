"""Transfer: a movement of an amount from a debit account to a credit account.

Definition
    A transfer has a client-chosen id, a debit and a credit account, a positive amount in minor
    units, a ledger, the accounts' currency and a code. A single-phase transfer posts at once.
    A pending transfer reserves the amount; it is later posted (in full or in part), voided, or
    expires when ``timeout_s`` (if non-zero) has passed since it was created. Stream:
    ``transfer:<id>``.

Guarantees
    A transfer's fields never change; its state only moves pending -> posted | voided | expired.
    The deadline is exactly ``created_at_ns + timeout_s * 10**9`` on the injected clock.

Rejections (in precedence order) for posting / voiding
    ``pending_transfer_not_found``, ``pending_transfer_not_pending``,
    ``pending_transfer_already_posted``, ``pending_transfer_already_voided``,
    ``pending_transfer_expired``, ``amount_must_not_be_zero``,
    ``exceeds_pending_transfer_amount``.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.aggregate import Aggregate
from domain.invariant import invariant
from domain.ledger import errors as e
from domain.ledger.events import (
    PendingTransferExpired,
    PendingTransferPosted,
    PendingTransferVoided,
    TransferCreated,
)

NS_PER_S = 1_000_000_000


def stream_id(transfer_id: int) -> str:
    return f"transfer:{transfer_id}"


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


class Transfer(Aggregate):
    __slots__ = (
        "amount",
        "code",
        "created_at_ns",
        "credit_account_id",
        "currency",
        "debit_account_id",
        "ledger",
        "pending",
        "posted_amount",
        "state",
        "timeout_s",
        "transfer_id",
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

    @property
    def deadline_ns(self) -> int | None:
        return self.created_at_ns + self.timeout_s * NS_PER_S if self.timeout_s else None

    @property
    def is_final(self) -> bool:
        return self.state in ("posted", "voided", "expired")

    def is_expired_at(self, now_ns: int) -> bool:
        deadline = self.deadline_ns
        return self.state == "pending" and deadline is not None and now_ns >= deadline

    # ------------------------------------------------------------------ commands

    @classmethod
    def create(cls, spec: TransferSpec, currency: str, now_ns: int) -> Transfer:
        transfer = cls(spec.transfer_id)
        transfer._trigger(
            TransferCreated(
                spec.transfer_id,
                spec.debit_account_id,
                spec.credit_account_id,
                spec.amount,
                spec.ledger,
                currency,
                spec.code,
                spec.pending,
                spec.timeout_s,
                now_ns,
            )
        )
        return transfer

    def check_same(self, spec: TransferSpec) -> None:
        """TigerBeetle's order for a re-submitted id: the first differing field wins."""
        ids = {"transfer_id": self.transfer_id}
        if spec.pending != self.pending:
            raise e.ExistsWithDifferentFlags("transfer exists with other flags", **ids)
        if spec.timeout_s != self.timeout_s:
            raise e.ExistsWithDifferentTimeout("transfer exists with another timeout", **ids)
        if spec.debit_account_id != self.debit_account_id:
            raise e.ExistsWithDifferentDebitAccountId(
                "transfer exists with another debit account", **ids
            )
        if spec.credit_account_id != self.credit_account_id:
            raise e.ExistsWithDifferentCreditAccountId(
                "transfer exists with another credit account", **ids
            )
        if spec.amount != self.amount:
            raise e.ExistsWithDifferentAmount("transfer exists with another amount", **ids)
        if spec.ledger != self.ledger:
            raise e.ExistsWithDifferentLedger("transfer exists on another ledger", **ids)
        if spec.code != self.code:
            raise e.ExistsWithDifferentCode("transfer exists with another code", **ids)

    def check_open(self, now_ns: int) -> None:
        """The rules shared by post and void."""
        ids = {"transfer_id": self.transfer_id}
        if not self.pending:
            raise e.PendingTransferNotPending(
                f"transfer {self.transfer_id} was not created as pending", **ids
            )
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

    def post(self, amount: int | None, now_ns: int) -> int:
        self.check_open(now_ns)
        posted = self.amount if amount is None else amount
        if posted <= 0:
            raise e.AmountMustNotBeZero(
                "a post must move a positive amount", transfer_id=self.transfer_id
            )
        if posted > self.amount:
            raise e.ExceedsPendingTransferAmount(
                f"cannot post {posted}: transfer {self.transfer_id} reserved {self.amount}",
                transfer_id=self.transfer_id,
            )
        self._trigger(PendingTransferPosted(self.transfer_id, posted, now_ns))
        return posted

    def void(self, now_ns: int) -> None:
        self.check_open(now_ns)
        self._trigger(PendingTransferVoided(self.transfer_id, now_ns))

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

    # ------------------------------------------------------------------ apply: assign only

    def apply(self, event: object) -> None:
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
        elif isinstance(event, PendingTransferPosted):
            self.state = "posted"
            self.posted_amount = event.amount
        elif isinstance(event, PendingTransferVoided):
            self.state = "voided"
        elif isinstance(event, PendingTransferExpired):
            self.state = "expired"
        else:  # pragma: no cover - a programming error
            invariant(False, f"Transfer cannot apply {type(event).__name__}")
