"""Given events, when a command, then events or the named rejection: every ledger rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from domain.invariant import InvariantViolation
from domain.ledger import errors as e
from domain.ledger import service
from domain.ledger.account import Account, AccountSpec
from domain.ledger.events import (
    AccountOpened,
    AmountPosted,
    AmountReserved,
    PendingTransferExpired,
    PendingTransferPosted,
    PendingTransferVoided,
    ReservationPosted,
    ReservationReleased,
    TransferCreated,
)
from domain.ledger.transfer import TransferSpec
from tests.unit.domain.fakes import FakeLedger

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def usd(account_id: int, **flags: bool) -> AccountSpec:
    return AccountSpec(account_id, 1, "USD", 10, **flags)


def tx(transfer_id: int, debit: int, credit: int, amount: int, **kw: Any) -> TransferSpec:
    return TransferSpec(
        transfer_id, debit, credit, amount, kw.pop("ledger", 1), kw.pop("code", 1), **kw
    )


def given(*steps: Callable[[FakeLedger], Any]) -> FakeLedger:
    ledger = FakeLedger()
    for step in steps:
        step(ledger)
        ledger.commit()
    return ledger


def opened(*specs: AccountSpec) -> Callable[[FakeLedger], Any]:
    def run(src: FakeLedger) -> None:
        for spec in specs:
            service.open_account(src, spec, T0)

    return run


def moved(spec: TransferSpec, at: int = T0) -> Callable[[FakeLedger], Any]:
    return lambda src: service.create_transfer(src, spec, at)


def posted(
    transfer_id: int, amount: int | None = None, at: int = T0
) -> Callable[[FakeLedger], Any]:
    return lambda src: service.post_pending_transfer(src, transfer_id, amount, at)


def voided(transfer_id: int, at: int = T0) -> Callable[[FakeLedger], Any]:
    return lambda src: service.void_pending_transfer(src, transfer_id, at)


def expired(transfer_id: int, at: int) -> Callable[[FakeLedger], Any]:
    return lambda src: service.expire_pending_transfer(src, transfer_id, at)


FUNDED = (
    opened(
        usd(1),
        usd(2, debits_must_not_exceed_credits=True),
        usd(3, credits_must_not_exceed_debits=True),
        AccountSpec(4, 2, "USD", 10),
        AccountSpec(5, 1, "EUR", 10),
        usd(6, closed=True),
    ),
    moved(tx(100, 1, 2, 500)),
)  # account 2 holds 500 of credits


@dataclass
class Case:
    rule: str
    given: tuple[Callable[[FakeLedger], Any], ...]
    when: Callable[[FakeLedger], Any]


REJECTIONS = [
    Case("id_must_not_be_zero", (), lambda s: service.open_account(s, usd(0), T0)),
    Case("id_must_not_be_zero", FUNDED, moved(tx(0, 1, 2, 1))),
    Case("id_must_not_be_int_max", (), lambda s: service.open_account(s, usd(2**128 - 1), T0)),
    Case("id_must_not_be_int_max", FUNDED, moved(tx(2**128 - 1, 1, 2, 1))),
    Case("debit_account_id_must_not_be_int_max", FUNDED, moved(tx(9, 2**128 - 1, 2, 1))),
    Case("credit_account_id_must_not_be_int_max", FUNDED, moved(tx(9, 1, 2**128 - 1, 1))),
    Case(
        "flags_are_mutually_exclusive",
        (),
        lambda s: service.open_account(
            s, usd(1, debits_must_not_exceed_credits=True, credits_must_not_exceed_debits=True), T0
        ),
    ),
    Case(
        "unknown_currency", (), lambda s: service.open_account(s, AccountSpec(1, 1, "XXQ", 1), T0)
    ),
    Case(
        "exists_with_different_flags",
        FUNDED,
        lambda s: service.open_account(s, usd(1, closed=True), T0),
    ),
    Case(
        "exists_with_different_ledger",
        FUNDED,
        lambda s: service.open_account(s, AccountSpec(1, 9, "USD", 10), T0),
    ),
    Case(
        "exists_with_different_currency",
        FUNDED,
        lambda s: service.open_account(s, AccountSpec(1, 1, "EUR", 10), T0),
    ),
    Case(
        "exists_with_different_code",
        FUNDED,
        lambda s: service.open_account(s, AccountSpec(1, 1, "USD", 11), T0),
    ),
    Case("exists", FUNDED, lambda s: service.open_account(s, usd(1), T0)),
    Case("accounts_must_be_different", FUNDED, moved(tx(200, 1, 1, 5))),
    Case("amount_must_not_be_zero", FUNDED, moved(tx(200, 1, 2, 0))),
    Case("timeout_reserved_for_pending_transfer", FUNDED, moved(tx(200, 1, 2, 5, timeout_s=3))),
    Case("exists_with_different_flags", FUNDED, moved(tx(100, 1, 2, 500, pending=True))),
    Case(
        "exists_with_different_timeout",
        (*FUNDED, moved(tx(300, 1, 2, 50, pending=True, timeout_s=5))),
        moved(tx(300, 1, 2, 50, pending=True, timeout_s=6)),
    ),
    Case("exists_with_different_debit_account_id", FUNDED, moved(tx(100, 3, 2, 500))),
    Case("exists_with_different_credit_account_id", FUNDED, moved(tx(100, 1, 3, 500))),
    Case("exists_with_different_amount", FUNDED, moved(tx(100, 1, 2, 501))),
    Case("exists_with_different_ledger", FUNDED, moved(tx(100, 1, 2, 500, ledger=2))),
    Case("exists_with_different_code", FUNDED, moved(tx(100, 1, 2, 500, code=2))),
    Case("exists", FUNDED, moved(tx(100, 1, 2, 500))),
    Case("debit_account_not_found", FUNDED, moved(tx(200, 99, 2, 5))),
    Case("credit_account_not_found", FUNDED, moved(tx(200, 1, 99, 5))),
    Case("ledger_must_match", FUNDED, moved(tx(200, 1, 4, 5))),
    Case("ledger_must_match", FUNDED, moved(tx(200, 1, 2, 5, ledger=2))),
    Case("currency_must_match", FUNDED, moved(tx(200, 1, 5, 5))),
    Case("account_closed", FUNDED, moved(tx(200, 6, 1, 5))),
    Case("account_closed", FUNDED, moved(tx(200, 1, 6, 5))),
    Case("exceeds_credits", FUNDED, moved(tx(200, 2, 1, 501))),
    Case(
        "exceeds_credits",
        (*FUNDED, moved(tx(150, 2, 1, 400, pending=True))),
        moved(tx(200, 2, 1, 101)),
    ),
    Case("exceeds_debits", FUNDED, moved(tx(200, 1, 3, 1))),
    Case("pending_transfer_not_found", FUNDED, posted(999)),
    Case("pending_transfer_not_pending", FUNDED, posted(100)),
    Case(
        "pending_transfer_already_posted",
        (*FUNDED, moved(tx(300, 1, 2, 50, pending=True)), posted(300)),
        voided(300),
    ),
    Case(
        "pending_transfer_already_voided",
        (*FUNDED, moved(tx(300, 1, 2, 50, pending=True)), voided(300)),
        posted(300),
    ),
    Case(
        "pending_transfer_expired",
        (*FUNDED, moved(tx(300, 1, 2, 50, pending=True, timeout_s=10))),
        posted(300, at=T0 + 10 * S),
    ),
    Case(
        "pending_transfer_expired",
        (*FUNDED, moved(tx(300, 1, 2, 50, pending=True, timeout_s=10)), expired(300, T0 + 11 * S)),
        voided(300, at=T0 + 12 * S),
    ),
    Case(
        "pending_transfer_not_expired",
        (*FUNDED, moved(tx(300, 1, 2, 50, pending=True, timeout_s=10))),
        expired(300, T0 + 10 * S - 1),
    ),
    Case(
        "amount_must_not_be_zero",
        (*FUNDED, moved(tx(300, 1, 2, 50, pending=True))),
        posted(300, amount=0),
    ),
    Case(
        "exceeds_pending_transfer_amount",
        (*FUNDED, moved(tx(300, 1, 2, 50, pending=True))),
        posted(300, amount=51),
    ),
]


@pytest.mark.parametrize(
    "case", REJECTIONS, ids=[f"{c.rule}-{i}" for i, c in enumerate(REJECTIONS)]
)
def test_each_rule_is_refused_by_name_and_changes_nothing(case: Case) -> None:
    ledger = given(*case.given)
    before = {k: (v.version, dict(vars_of(v))) for k, v in ledger.committed.items()}
    with pytest.raises(e.LedgerRejection) as info:
        case.when(ledger)
    assert info.value.code == case.rule
    ledger.rollback()
    after = {k: (v.version, dict(vars_of(v))) for k, v in ledger.committed.items()}
    assert after == before


def vars_of(agg: Any) -> dict[str, Any]:
    return {
        name: getattr(agg, name)
        for cls in type(agg).__mro__
        for name in getattr(cls, "__slots__", ())
        if name != "_pending"
    }


def test_every_named_rule_has_a_case_or_is_raised_by_the_application_layer() -> None:
    covered = {c.rule for c in REJECTIONS}
    application_layer = {"id_already_failed", "linked_event_failed", "account_not_found"}
    assert {r.code for r in e.ALL_RULES} - {"ledger_rejection"} <= covered | application_layer


def test_a_single_phase_transfer_posts_both_sides_at_once() -> None:
    ledger = given(*FUNDED)
    service.create_transfer(ledger, tx(200, 1, 2, 70), T0 + 1)
    events = ledger.commit()
    assert [type(x) for x in events] == [AmountPosted, AmountPosted, TransferCreated]
    a1, a2 = ledger.committed["account:1"], ledger.committed["account:2"]
    assert isinstance(a1, Account) and isinstance(a2, Account)
    assert (a1.debits_posted, a2.credits_posted) == (570, 570)


def test_a_pending_transfer_reserves_then_a_partial_post_releases_the_rest() -> None:
    ledger = given(*FUNDED)
    service.create_transfer(ledger, tx(300, 2, 1, 400, pending=True, timeout_s=60), T0)
    assert [type(x) for x in ledger.commit()] == [AmountReserved, AmountReserved, TransferCreated]
    a2 = ledger.committed["account:2"]
    assert isinstance(a2, Account)
    assert (a2.debits_pending, a2.debits_posted) == (400, 0)
    service.post_pending_transfer(ledger, 300, 150, T0 + 59 * S)
    events = ledger.commit()
    assert [type(x) for x in events] == [
        PendingTransferPosted,
        ReservationPosted,
        ReservationPosted,
    ]
    a2 = ledger.committed["account:2"]
    assert isinstance(a2, Account)
    assert (a2.debits_pending, a2.debits_posted) == (0, 150)
    # the released 250 can be spent again
    service.create_transfer(ledger, tx(301, 2, 1, 350), T0 + 60 * S)


def test_voiding_and_expiry_release_the_reservation() -> None:
    ledger = given(
        *FUNDED,
        moved(tx(300, 2, 1, 500, pending=True, timeout_s=5)),
        moved(tx(301, 1, 2, 10, pending=True)),
    )
    service.expire_pending_transfer(ledger, 300, T0 + 5 * S)
    assert [type(x) for x in ledger.commit()] == [
        PendingTransferExpired,
        ReservationReleased,
        ReservationReleased,
    ]
    service.void_pending_transfer(ledger, 301, T0)
    assert [type(x) for x in ledger.commit()] == [
        PendingTransferVoided,
        ReservationReleased,
        ReservationReleased,
    ]
    for account_id in (1, 2):
        acc = ledger.committed[f"account:{account_id}"]
        assert isinstance(acc, Account)
        assert (acc.debits_pending, acc.credits_pending) == (0, 0)


def test_a_void_may_release_a_reservation_on_a_closed_account() -> None:
    ledger = given(opened(usd(1)), lambda s: None)
    acc = ledger.committed["account:1"]
    # A reservation made before the account was closed: closing is a fact recorded at opening
    # here, so build the state by events, as a replay would.
    closed = Account(7).replay(
        [
            AccountOpened(7, 1, "USD", 10, False, False, True, T0),
            AmountReserved(7, 300, 1, "USD", "debit", T0, 5),
        ]
    )
    ledger.committed["account:7"] = closed
    ledger.committed["transfer:300"] = (
        __import__("domain.ledger.transfer", fromlist=["Transfer"])
        .Transfer(300)
        .replay([TransferCreated(300, 7, 1, 5, 1, "USD", 1, True, 0, T0)])
    )
    acc.replay([AmountReserved(1, 300, 1, "USD", "credit", T0, 5)])
    service.void_pending_transfer(ledger, 300, T0 + 1)
    assert closed.debits_pending == 5  # committed copy untouched until commit
    ledger.commit()
    refreshed = ledger.committed["account:7"]
    assert isinstance(refreshed, Account)
    assert refreshed.debits_pending == 0


def test_apply_that_would_break_a_limit_is_a_loud_programming_error() -> None:
    account = Account(1).replay([AccountOpened(1, 1, "USD", 1, True, False, False, T0)])
    with pytest.raises(InvariantViolation):
        account._trigger(AmountPosted(1, 9, 1, "USD", "debit", T0, 1))
