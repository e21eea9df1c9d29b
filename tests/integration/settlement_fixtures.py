"""Settlement activity through the real runtime (processor, store, projector), for tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from commands import settlement as sc
from commands.ledger import CreateAccount, CreateTransfer, account_command, transfer_command
from commands.processor import Command, Outcome
from ledgerline.runtime import Runtime

HUB = {"USD": 9_000_001, "EUR": 9_000_002}
FUNDING = 8_000_000  # the ledger account that funds participants' settlement accounts


def account_of(pid: int, currency: str) -> int:
    return pid * 1000 + (1 if currency == "USD" else 2)


class Day:
    """One settlement day driven through a runtime's command processor."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.last_position = 0

    def run(self, command: Command) -> Outcome:
        outcome = self.runtime.processor.execute(command)
        if outcome.position:
            self.last_position = max(self.last_position, outcome.position)
        return outcome

    def ok(self, command: Command) -> dict[str, Any]:
        outcome = self.run(command)
        assert outcome.accepted, outcome.result
        return outcome.result

    def settled_read_models(self) -> None:
        assert self.runtime.wait_for_position(self.last_position, 10)

    def ledger_accounts(
        self,
        participants: Iterable[int],
        currencies: Iterable[str] = ("USD", "EUR"),
        *,
        funded_minor: int | None = None,
    ) -> None:
        """Open hub and participant settlement accounts (limited to their funds when
        ``funded_minor`` is given, then funded with that much)."""
        currencies = list(currencies)
        for currency in currencies:
            self.ok(
                account_command(
                    CreateAccount(id=HUB[currency], ledger=1, currency=currency, code=1)
                )
            )
            self.ok(
                account_command(
                    CreateAccount(id=FUNDING + HUB[currency], ledger=1, currency=currency, code=1)
                )
            )
        for pid in participants:
            for currency in currencies:
                limited = funded_minor is not None
                self.ok(
                    account_command(
                        CreateAccount(
                            id=account_of(pid, currency),
                            ledger=1,
                            currency=currency,
                            code=2,
                            debits_must_not_exceed_credits=limited,
                        )
                    )
                )
                if funded_minor:
                    self.ok(
                        transfer_command(
                            CreateTransfer(
                                id=account_of(pid, currency) * 10,
                                debit_account_id=FUNDING + HUB[currency],
                                credit_account_id=account_of(pid, currency),
                                amount=f"{funded_minor / 100:.2f}",
                                ledger=1,
                                code=3,
                            )
                        )
                    )

    def participant(
        self, pid: int, currencies: Iterable[str] = ("USD", "EUR"), **limits: Any
    ) -> None:
        self.ok(
            sc.register_command(
                sc.RegisterParticipant(
                    id=pid,
                    name=f"bank {pid}",
                    accounts={c: account_of(pid, c) for c in currencies},
                    **limits,
                )
            )
        )

    def scheme(
        self,
        scheme_id: int,
        mode: str,
        participants: Iterable[int],
        currencies: Iterable[str] = ("USD",),
        times: tuple[int, ...] = (),
    ) -> dict[str, Any]:
        return self.ok(
            sc.scheme_command(
                sc.CreateScheme(
                    id=scheme_id,
                    name=f"scheme {scheme_id}",
                    mode=mode,
                    settlement_accounts={c: HUB[c] for c in currencies},
                    cut_off_times_s=times,
                    participants=tuple(participants),
                )
            )
        )

    def obligation(
        self,
        oid: int,
        scheme_id: int,
        payer: int,
        payee: int,
        amount: str,
        currency: str = "USD",
        **kw: Any,
    ) -> Outcome:
        return self.run(
            sc.obligation_command(
                sc.SubmitObligation(
                    id=oid,
                    scheme_id=scheme_id,
                    payer_id=payer,
                    payee_id=payee,
                    currency=currency,
                    amount=amount,
                    **kw,
                )
            )
        )

    def cut_off(self, scheme_id: int, seq: int) -> Outcome:
        return self.run(sc.cut_off_command(sc.CutOff(scheme_id=scheme_id, seq=seq)))

    def unwind(self, scheme_id: int, seq: int, pid: int) -> Outcome:
        return self.run(
            sc.unwind_command(sc.Unwind(scheme_id=scheme_id, seq=seq, participant_id=pid))
        )

    def settle(self, scheme_id: int, seq: int) -> Outcome:
        return self.run(sc.settle_command(sc.Settle(scheme_id=scheme_id, seq=seq)))

    def release(self, scheme_id: int) -> Outcome:
        return self.run(
            sc.release_command(sc.Release(scheme_id=scheme_id, request_id=sc.new_request_id()))
        )
