"""Scheme: a named settlement arrangement between participants.

Definition
    A scheme has a client-chosen id, a name, a mode (``dns``: deferred net settlement in
    cycles; ``rtgs``: gross settlement in real time against positions, one cycle per business
    day), the currencies it clears with the scheme's settlement (hub) account in the ledger for
    each, a cut-off schedule (seconds after midnight UTC; empty: cut-offs are only manual), and
    its members (each with a settlement account in at least one of its currencies; an
    obligation needs both parties to have one in its currency). It always has exactly one
    open cycle, ``open_seq``. Stream: ``scheme:<id>``.

Guarantees
    * Cycle numbers start at 1 and grow by one at each cut-off.
    * The scheduled cut-off of a cycle opened at t is the first schedule point strictly after
      t, on the injected clock (``next_cut_off_ns``); its value date is that point's UTC date
      (the opening date when there is no schedule).
    * ``MUTATES_IN_PLACE``: every command method raises, if at all, before its event.

Rejections (in precedence order)
    Creating: ``id_must_not_be_zero``, ``id_must_not_be_int_max``, ``name_must_not_be_empty``,
    ``unknown_mode``,
    ``currencies_must_not_be_empty``, ``unknown_currency``, ``cut_off_time_invalid``,
    ``scheme_exists``; then, per listed participant in order,
    ``participant_not_found``, ``participant_defaulted``, ``participant_lacks_account``.
    Admitting: ``scheme_not_found``, ``participant_not_found``, ``participant_already_member``,
    ``participant_defaulted``, ``participant_lacks_account``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Self

from domain.aggregate import Aggregate
from domain.invariant import invariant
from domain.money import is_currency
from domain.settlement import errors as e
from domain.settlement.events import CycleAdvanced, ParticipantAdmitted, SchemeCreated

MODES = ("dns", "rtgs")
NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S


def stream_id(scheme_id: int) -> str:
    return f"scheme:{scheme_id}"


def cycle_id(scheme_id: int, seq: int) -> str:
    """The public id of a cycle: ``<scheme id>-<seq>``."""
    return f"{scheme_id}-{seq}"


def parse_cycle_id(text: str) -> tuple[int, int] | None:
    scheme, sep, seq = text.partition("-")
    if not sep or not scheme.isdigit() or not seq.isdigit():
        return None
    if (scheme != "0" and scheme.startswith("0")) or (seq != "0" and seq.startswith("0")):
        return None
    return int(scheme), int(seq)


def next_cut_off_ns(times_s: tuple[int, ...], after_ns: int) -> int:
    """The first schedule point strictly after ``after_ns``; 0 when there is no schedule."""
    if not times_s:
        return 0
    day = after_ns // NS_PER_DAY
    for d in (day, day + 1):
        for t in times_s:
            at = d * NS_PER_DAY + t * NS_PER_S
            if at > after_ns:
                return at
    invariant(False, "a non-empty daily schedule has a point within two days")
    return 0  # pragma: no cover


def value_date_of(at_ns: int) -> str:
    return (
        (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=at_ns // 1000))
        .date()
        .isoformat()
    )


@dataclass(frozen=True, slots=True)
class SchemeSpec:
    scheme_id: int
    name: str
    mode: str
    settlement_accounts: dict[str, int]  # currency -> hub account; its keys are the currencies
    cut_off_times_s: tuple[int, ...] = ()
    participants: tuple[int, ...] = field(default_factory=tuple)


class Scheme(Aggregate):
    MUTATES_IN_PLACE = True  # read by every obligation; commands validate before their event

    __slots__ = (
        "created_at_ns",
        "currencies",
        "cut_off_times_s",
        "members",
        "mode",
        "name",
        "open_seq",
        "scheme_id",
        "settlement_accounts",
    )

    def __init__(self, scheme_id: int) -> None:
        super().__init__(stream_id(scheme_id))
        self.scheme_id = scheme_id
        self.name = ""
        self.mode = "dns"
        self.currencies: tuple[str, ...] = ()
        self.settlement_accounts: dict[str, int] = {}
        self.cut_off_times_s: tuple[int, ...] = ()
        self.members: frozenset[int] = frozenset()
        self.open_seq = 0
        self.created_at_ns = 0

    # ------------------------------------------------------------------ reading

    def clears(self, currency: str) -> bool:
        return currency in self.settlement_accounts

    def is_member(self, participant_id: int) -> bool:
        return participant_id in self.members

    def next_cut_off_ns(self, after_ns: int) -> int:
        return next_cut_off_ns(self.cut_off_times_s, after_ns)

    # ------------------------------------------------------------------ commands

    @staticmethod
    def check_spec(spec: SchemeSpec) -> None:
        ids = {"scheme_id": spec.scheme_id}
        e.check_ids(
            "scheme, account and participant ids",
            spec.scheme_id,
            *spec.settlement_accounts.values(),
            *spec.participants,
            **ids,
        )
        if not spec.name.strip():
            raise e.NameMustNotBeEmpty("a scheme needs a name", **ids)
        if spec.mode not in MODES:
            raise e.UnknownMode(f"mode {spec.mode!r} is not one of {MODES}", **ids)
        if not spec.settlement_accounts:
            raise e.CurrenciesMustNotBeEmpty("a scheme clears at least one currency", **ids)
        for currency in spec.settlement_accounts:
            if not is_currency(currency):
                raise e.UnknownCurrency(f"{currency!r} is not an ISO 4217 currency", **ids)
        times = spec.cut_off_times_s
        if any(not 0 <= t < 86_400 for t in times) or len(set(times)) != len(times):
            raise e.CutOffTimeInvalid(
                "cut-off times are distinct seconds after midnight UTC (0..86399)", **ids
            )

    @classmethod
    def create(cls, spec: SchemeSpec, now_ns: int) -> Scheme:
        scheme = cls(spec.scheme_id)
        scheme._trigger(
            SchemeCreated(
                spec.scheme_id,
                spec.name,
                spec.mode,
                sorted(spec.settlement_accounts),
                {k: spec.settlement_accounts[k] for k in sorted(spec.settlement_accounts)},
                sorted(spec.cut_off_times_s),
                list(dict.fromkeys(spec.participants)),
                now_ns,
            )
        )
        return scheme

    def admit(self, participant_id: int, now_ns: int) -> None:
        if participant_id in self.members:
            raise e.ParticipantAlreadyMember(
                f"participant {participant_id} is a member of scheme {self.scheme_id}",
                scheme_id=self.scheme_id,
                participant_id=participant_id,
            )
        self._trigger(ParticipantAdmitted(self.scheme_id, participant_id, now_ns))

    def advance(self, now_ns: int) -> int:
        """Record that the open cycle was cut off and the next one opened; returns its seq."""
        self._trigger(CycleAdvanced(self.scheme_id, self.open_seq, self.open_seq + 1, now_ns))
        return self.open_seq

    # ------------------------------------------------------------------ apply: assign only

    def apply(self, event: object) -> None:
        if isinstance(event, SchemeCreated):
            self.name = event.name
            self.mode = event.mode
            self.currencies = tuple(event.currencies)
            self.settlement_accounts = dict(event.settlement_accounts)
            self.cut_off_times_s = tuple(event.cut_off_times_s)
            self.members = frozenset(event.participants)
            self.open_seq = 1
            self.created_at_ns = event.created_at_ns
        elif isinstance(event, ParticipantAdmitted):
            self.members = self.members | {event.participant_id}
        elif isinstance(event, CycleAdvanced):
            self.open_seq = event.open_seq
        else:  # pragma: no cover - a programming error
            invariant(False, f"Scheme cannot apply {type(event).__name__}")

    # ------------------------------------------------------------------ snapshots

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": self.mode,
            "currencies": list(self.currencies),
            "settlement_accounts": dict(self.settlement_accounts),
            "cut_off_times_s": list(self.cut_off_times_s),
            "members": sorted(self.members),
            "open_seq": self.open_seq,
            "created_at_ns": self.created_at_ns,
        }

    @classmethod
    def from_snapshot(cls, stream_id: str, version: int, state: dict[str, Any]) -> Self:
        scheme = cls(int(stream_id.split(":", 1)[1]))
        scheme.version = version
        scheme.name = state["name"]
        scheme.mode = state["mode"]
        scheme.currencies = tuple(state["currencies"])
        scheme.settlement_accounts = {k: int(v) for k, v in state["settlement_accounts"].items()}
        scheme.cut_off_times_s = tuple(int(t) for t in state["cut_off_times_s"])
        scheme.members = frozenset(int(p) for p in state["members"])
        scheme.open_seq = int(state["open_seq"])
        scheme.created_at_ns = int(state["created_at_ns"])
        return scheme
