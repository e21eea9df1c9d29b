"""Ledger rules that span aggregates, checked in a documented order.

Create transfer: rules in precedence order (``CREATE_TRANSFER_ORDER``)
    1. ``id_must_not_be_zero``            ids, ledger and code are positive; then
       ``id_must_not_be_int_max``, ``debit_account_id_must_not_be_int_max``,
       ``credit_account_id_must_not_be_int_max`` (2^128-1 is reserved)
    2. ``accounts_must_be_different``
    3. ``amount_must_not_be_zero``
    4. ``timeout_reserved_for_pending_transfer``
    5. ``exists_with_different_flags``, ``..._timeout``, ``..._debit_account_id``,
       ``..._credit_account_id``, ``..._amount``, ``..._ledger``, ``..._code``, then ``exists``
    6. ``debit_account_not_found``, ``credit_account_not_found``
    7. ``ledger_must_match``              both accounts and the transfer share the ledger
    8. ``currency_must_match``            both accounts hold the same currency
    9. ``account_closed``                 debit side first
   10. ``exceeds_credits``                the debit account's limit
   11. ``exceeds_debits``                 the credit account's limit

Post / void pending transfer: see :mod:`domain.ledger.transfer`, then ``account_closed``
(post only: a void may release a closed account's reservation).
"""

from __future__ import annotations

from typing import Protocol

from domain.aggregate import Aggregate
from domain.ledger import errors as e
from domain.ledger.account import ID_INT_MAX, Account, AccountSpec
from domain.ledger.transfer import Transfer, TransferSpec

CREATE_TRANSFER_ORDER: tuple[str, ...] = (
    "id_must_not_be_zero",
    "id_must_not_be_int_max",
    "debit_account_id_must_not_be_int_max",
    "credit_account_id_must_not_be_int_max",
    "accounts_must_be_different",
    "amount_must_not_be_zero",
    "timeout_reserved_for_pending_transfer",
    "exists_with_different_flags",
    "exists_with_different_timeout",
    "exists_with_different_debit_account_id",
    "exists_with_different_credit_account_id",
    "exists_with_different_amount",
    "exists_with_different_ledger",
    "exists_with_different_code",
    "exists",
    "debit_account_not_found",
    "credit_account_not_found",
    "ledger_must_match",
    "currency_must_match",
    "account_closed",
    "exceeds_credits",
    "exceeds_debits",
)
POST_PENDING_ORDER: tuple[str, ...] = (
    "pending_transfer_not_found",
    "pending_transfer_not_pending",
    "pending_transfer_already_posted",
    "pending_transfer_already_voided",
    "pending_transfer_expired",
    "amount_must_not_be_zero",
    "exceeds_pending_transfer_amount",
    "account_closed",
)
VOID_PENDING_ORDER: tuple[str, ...] = POST_PENDING_ORDER[:5]


class LedgerSource(Protocol):
    """Where the service finds aggregates (a unit of work, or a dict in tests)."""

    def get_account(self, account_id: int) -> Account | None: ...

    def get_transfer(self, transfer_id: int) -> Transfer | None: ...

    def add(self, aggregate: Aggregate) -> None: ...


def open_account(src: LedgerSource, spec: AccountSpec, now_ns: int) -> Account:
    account = Account.open(spec, src.get_account(spec.account_id), now_ns)
    src.add(account)
    return account


def _check_ids(spec: TransferSpec) -> None:
    ids = {"transfer_id": spec.transfer_id}
    if (
        min(spec.transfer_id, spec.debit_account_id, spec.credit_account_id) <= 0
        or min(spec.ledger, spec.code) <= 0
    ):
        raise e.IdMustNotBeZero("transfer and account ids, ledger and code must be positive", **ids)
    if spec.transfer_id >= ID_INT_MAX:
        raise e.IdMustNotBeIntMax("transfer ids are below 2^128-1", **ids)
    if spec.debit_account_id >= ID_INT_MAX:
        raise e.DebitAccountIdMustNotBeIntMax("account ids are below 2^128-1", **ids)
    if spec.credit_account_id >= ID_INT_MAX:
        raise e.CreditAccountIdMustNotBeIntMax("account ids are below 2^128-1", **ids)


def create_transfer(src: LedgerSource, spec: TransferSpec, now_ns: int) -> Transfer:
    ids = {"transfer_id": spec.transfer_id}
    _check_ids(spec)
    if spec.debit_account_id == spec.credit_account_id:
        raise e.AccountsMustBeDifferent(
            "debit and credit account must differ", account_id=spec.debit_account_id, **ids
        )
    if spec.amount <= 0:
        raise e.AmountMustNotBeZero("the amount must be positive", **ids)
    if spec.timeout_s and not spec.pending:
        raise e.TimeoutReservedForPendingTransfer("only a pending transfer may time out", **ids)
    existing = src.get_transfer(spec.transfer_id)
    if existing is not None:
        existing.check_same(spec)
        raise e.Exists(f"transfer {spec.transfer_id} exists", **ids)
    debit = src.get_account(spec.debit_account_id)
    if debit is None:
        raise e.DebitAccountNotFound(
            f"debit account {spec.debit_account_id} does not exist",
            account_id=spec.debit_account_id,
            **ids,
        )
    credit = src.get_account(spec.credit_account_id)
    if credit is None:
        raise e.CreditAccountNotFound(
            f"credit account {spec.credit_account_id} does not exist",
            account_id=spec.credit_account_id,
            **ids,
        )
    if not debit.ledger == credit.ledger == spec.ledger:
        raise e.LedgerMustMatch(
            f"accounts are on ledgers {debit.ledger} and {credit.ledger}, "
            f"the transfer on {spec.ledger}",
            **ids,
        )
    if debit.currency != credit.currency:
        raise e.CurrencyMustMatch(
            f"cannot move {debit.currency} into a {credit.currency} account", **ids
        )
    # Both sides are checked before either is touched, so a rejection changes nothing.
    debit.check_can_take("debit", spec.amount, spec.transfer_id)
    credit.check_can_take("credit", spec.amount, spec.transfer_id)
    transfer = Transfer.create(spec, debit.currency, now_ns)
    if spec.pending:
        debit.reserve_amount("debit", spec.transfer_id, spec.amount, now_ns)
        credit.reserve_amount("credit", spec.transfer_id, spec.amount, now_ns)
    else:
        debit.post_amount("debit", spec.transfer_id, spec.amount, now_ns)
        credit.post_amount("credit", spec.transfer_id, spec.amount, now_ns)
    src.add(transfer)
    return transfer


def _pending(src: LedgerSource, transfer_id: int) -> tuple[Transfer, Account, Account]:
    transfer = src.get_transfer(transfer_id)
    if transfer is None:
        raise e.PendingTransferNotFound(
            f"transfer {transfer_id} does not exist", transfer_id=transfer_id
        )
    debit = src.get_account(transfer.debit_account_id)
    credit = src.get_account(transfer.credit_account_id)
    if debit is None or credit is None:  # accounts are never deleted
        raise e.AccountNotFound("an account of the transfer is missing", transfer_id=transfer_id)
    return transfer, debit, credit


def post_pending_transfer(
    src: LedgerSource, transfer_id: int, amount: int | None, now_ns: int
) -> Transfer:
    transfer, debit, credit = _pending(src, transfer_id)
    transfer.check_open(now_ns)
    for account in (debit, credit):
        if account.closed:
            raise e.AccountClosed(
                f"account {account.account_id} is closed",
                account_id=account.account_id,
                transfer_id=transfer_id,
            )
    posted = transfer.post(amount, now_ns)
    debit.post_reservation("debit", transfer_id, transfer.amount, posted, now_ns)
    credit.post_reservation("credit", transfer_id, transfer.amount, posted, now_ns)
    return transfer


def void_pending_transfer(src: LedgerSource, transfer_id: int, now_ns: int) -> Transfer:
    return _release(src, transfer_id, now_ns, "voided")


def expire_pending_transfer(src: LedgerSource, transfer_id: int, now_ns: int) -> Transfer:
    return _release(src, transfer_id, now_ns, "expired")


def _release(src: LedgerSource, transfer_id: int, now_ns: int, reason: str) -> Transfer:
    """Void or expire a pending transfer, then release its reservation on both accounts."""
    transfer, debit, credit = _pending(src, transfer_id)
    if reason == "voided":
        transfer.void(now_ns)
    else:
        transfer.expire(now_ns)
    debit.release_reservation("debit", transfer_id, transfer.amount, reason, now_ns)
    credit.release_reservation("credit", transfer_id, transfer.amount, reason, now_ns)
    return transfer
