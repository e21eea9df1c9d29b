"""TradingAccount: which ledger account a trading account settles each asset through.

Definition
    Stream ``trader:<account id>``. One ``LedgerAccountLinked`` per asset: the ledger account
    (client-chosen, opened in the ledger beforehand) that holds the account's funds of that
    asset. Only instruments with settlement ``ledger`` need links.

Guarantees
    A link never changes once made (funds on hold would otherwise lose their way).

Rejections (in precedence order, ``LINK_ACCOUNT_ORDER``)
    ``id_must_not_be_zero``, ``id_must_not_be_int_max``, ``invalid_asset``,
    ``ledger_account_not_found``,
    ``ledger_account_mismatch`` (another currency, closed, or unable to take credits),
    ``asset_already_linked``; a repeat of the same link answers ``exists``.
"""

from __future__ import annotations

from typing import Any

from domain.aggregate import Aggregate
from domain.invariant import invariant
from domain.trading import errors as e
from domain.trading.events import LedgerAccountLinked

LINK_ACCOUNT_ORDER: tuple[str, ...] = (
    "id_must_not_be_zero",
    "id_must_not_be_int_max",
    "invalid_asset",
    "ledger_account_not_found",
    "ledger_account_mismatch",
    "asset_already_linked",
    "exists",
)


def stream_id(account_id: int) -> str:
    return f"trader:{account_id}"


class TradingAccount(Aggregate):
    __slots__ = ("account_id", "links")

    def __init__(self, account_id: int) -> None:
        super().__init__(stream_id(account_id))
        self.account_id = account_id
        self.links: dict[str, int] = {}  # replaced, never changed in place (clones share it)

    @classmethod
    def link_first(
        cls, account_id: int, asset: str, ledger_account_id: int, now_ns: int
    ) -> TradingAccount:
        account = cls(account_id)
        account._trigger(LedgerAccountLinked(1, now_ns, account_id, asset, ledger_account_id))
        return account

    def link(self, asset: str, ledger_account_id: int, now_ns: int) -> None:
        ids: dict[str, Any] = {"account_id": self.account_id, "asset": asset}
        current = self.links.get(asset)
        if current == ledger_account_id:
            raise e.AccountLinked(f"{asset} is already linked to {ledger_account_id}", **ids)
        if current is not None:
            raise e.AssetAlreadyLinked(
                f"{asset} is linked to ledger account {current} for good", **ids
            )
        self._trigger(
            LedgerAccountLinked(self.version + 1, now_ns, self.account_id, asset, ledger_account_id)
        )

    def ledger_account(self, asset: str) -> int | None:
        return self.links.get(asset)

    def to_snapshot(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "links": dict(sorted(self.links.items()))}

    @classmethod
    def from_snapshot(cls, stream_id: str, version: int, state: dict[str, Any]) -> TradingAccount:
        account = cls(state["account_id"])
        invariant(account.id == stream_id, f"snapshot of {account.id} restored as {stream_id}")
        account.links = dict(state["links"])
        account.version = version
        return account

    def apply(self, event: Any) -> None:
        invariant(isinstance(event, LedgerAccountLinked), f"TradingAccount cannot apply {event!r}")
        self.links = {**self.links, event.asset: event.ledger_account_id}
