"""The engine's account windows: a bounded hot set in memory, the rest in a cold store.

Definition
    :class:`Windows` maps an account to its :class:`~domain.aml.state.AccountState`. Without a
    cold store it is a plain in-memory map. With one (:class:`ColdStore`, bytes by account,
    supplied by the caller: the domain does no I/O), it keeps at most ``hot_limit`` states in
    memory, least recently used first out: :meth:`settle`, called by the engine once a
    transaction has been observed, writes the coldest states to the store as bytes (exact
    ``pickle`` round trips) and forgets them; :meth:`get` brings a cold state back when a
    transaction or a network detector reaches its account.

Guarantees
    * The same answers whatever ``hot_limit``: a state read back equals the one written, so an
      engine with a hot set of one account raises exactly the alerts of an unbounded one.
    * Nothing is evicted while a transaction is being observed: every state a detector holds
      stays the one in the map until :meth:`settle`.
    * An account's state is in one place: in memory, or in the store (taken out of it when
      read back), so the store can say cheaply that an account has no state at all.
    * Changes are known: once :meth:`take_changes` has been called, every account whose state
      may have changed since (read, added or forgotten) is remembered, so a checkpoint can
      write only those. Past half the accounts, the set is dropped ("everything may have
      changed"): it never grows beyond that.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Protocol

from domain.aml.state import AccountState


class ColdStore(Protocol):
    """Where cold account states wait, as bytes (private to one engine)."""

    def take(self, account: str) -> bytes | None:
        """The bytes saved for ``account``, forgotten by the store (None: nothing saved)."""
        ...

    def save(self, items: Iterable[tuple[str, bytes]]) -> None:
        """Keep these states (of accounts the store holds nothing for)."""
        ...

    def drop(self, accounts: Iterable[str]) -> None:
        """Forget whatever is saved for these accounts (some may have nothing saved)."""
        ...

    def peek(self, account: str) -> bytes | None:
        """The bytes saved for ``account``, left in the store (None: nothing saved)."""
        ...

    def accounts(self) -> Iterable[str]:
        """The accounts it holds a state for."""
        ...

    def items(self) -> Iterable[tuple[str, bytes]]:
        """Every saved state, left in the store."""
        ...

    def __len__(self) -> int: ...


class Windows:
    __slots__ = ("changed", "cold", "evicted", "hot", "hot_limit", "loaded")

    def __init__(self, cold: ColdStore | None = None, hot_limit: int = 0) -> None:
        if cold is not None and hot_limit < 1:
            raise ValueError("a hot set needs room for at least one account")
        self.hot: OrderedDict[str, AccountState] = OrderedDict()
        self.cold = cold
        self.hot_limit = hot_limit
        self.loaded = 0  # states brought back from the store
        self.evicted = 0  # states written to it
        # Accounts whose state may have changed since take_changes (None: not known, all may).
        self.changed: set[str] | None = None

    def get(self, account: str) -> AccountState | None:
        if self.changed is not None:
            self.changed.add(account)  # a detector may change the state it reads
        state = self.hot.get(account)
        if state is not None:
            if self.cold is not None:
                self.hot.move_to_end(account)
            return state
        if self.cold is None:
            return None
        data = self.cold.take(account)
        if data is None:
            return None
        state = pickle.loads(data)  # noqa: S301 - our own bytes (see settle)
        if not isinstance(state, AccountState):
            raise TypeError(f"the cold store held no account state for {account}")
        self.hot[account] = state
        self.loaded += 1
        return state

    def __getitem__(self, account: str) -> AccountState:
        state = self.get(account)
        if state is None:
            raise KeyError(account)
        return state

    def __setitem__(self, account: str, state: AccountState) -> None:
        """Add a new account's state (an account with one, hot or cold, is read by get)."""
        if self.changed is not None:
            self.changed.add(account)
        self.hot[account] = state

    def __len__(self) -> int:
        return len(self.hot) + (0 if self.cold is None else len(self.cold))

    def __iter__(self) -> Iterator[str]:
        yield from list(self.hot)
        if self.cold is not None:
            yield from sorted(self.cold.accounts())

    def forget(self, accounts: Iterable[str]) -> None:
        """Drop the states of these accounts, hot or cold."""
        accounts = list(accounts)
        if self.changed is not None:
            self.changed.update(accounts)
        cold = [a for a in accounts if self.hot.pop(a, None) is None]
        if cold and self.cold is not None:
            self.cold.drop(cold)

    def settle(self) -> None:
        """Write the coldest states out until the hot set is back within its limit (an
        eighth below it, so that writes come in batches)."""
        changed = self.changed
        if changed is not None and len(changed) > 64 and len(changed) > len(self) >> 1:
            self.changed = None  # a checkpoint then writes everything anyway
        if self.cold is None or len(self.hot) <= self.hot_limit:
            return
        keep = self.hot_limit - self.hot_limit // 8
        popitem = self.hot.popitem
        out = [popitem(last=False) for _ in range(len(self.hot) - keep)]
        dumps, protocol = pickle.dumps, pickle.HIGHEST_PROTOCOL
        self.cold.save([(account, dumps(state, protocol)) for account, state in out])
        self.evicted += len(out)

    def saved(self) -> Iterator[tuple[str, bytes]]:
        """Every state as bytes, hot and cold, by account (a checkpoint; nothing moves)."""
        dumps, protocol = pickle.dumps, pickle.HIGHEST_PROTOCOL
        for account, state in self.hot.items():
            yield account, dumps(state, protocol)
        if self.cold is not None:
            yield from self.cold.items()

    def take_changes(self) -> set[str] | None:
        """The accounts whose state may have changed since the last call (None: not known;
        every account may have), and from now on, a new record of them."""
        changed, self.changed = self.changed, set()
        return changed

    def pending_changes(self) -> int:
        """How many states a checkpoint of the changes would write (all when not known)."""
        return len(self) if self.changed is None else len(self.changed)

    def saved_of(self, accounts: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """The states of those of ``accounts`` that have one, as bytes (nothing moves)."""
        dumps, protocol, hot, cold = pickle.dumps, pickle.HIGHEST_PROTOCOL, self.hot, self.cold
        for account in accounts:
            state = hot.get(account)
            if state is not None:
                yield account, dumps(state, protocol)
            elif cold is not None and (data := cold.peek(account)) is not None:
                yield account, data

    def __getstate__(self) -> tuple[dict[str, AccountState]]:
        """Every state, hot and cold, as one map (an engine snapshot holds no store; the
        cold states come back into memory)."""
        return ({account: self[account] for account in list(self)},)  # never empty: pickle
        # calls __setstate__ only for a true state

    def __setstate__(self, state: tuple[dict[str, AccountState]]) -> None:
        self.__init__()  # type: ignore[misc]
        self.hot.update(state[0])
