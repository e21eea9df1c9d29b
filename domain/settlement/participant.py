"""Participant: a bank (or any member) that owes and is owed in clearing schemes.

Definition
    A participant has a client-chosen id, a name, one settlement account in the ledger per
    currency it settles in, and per currency: a net debit cap (DNS: the largest net debit it
    may run in a cycle; absent: no cap) and, for RTGS, a minimum and a maximum position
    (defaults 0 and none: it never runs a debit balance, CHIPS-style). Status: ``active``,
    ``suspended`` or ``defaulted``. Stream: ``participant:<id>``.

Guarantees
    * Limits only name currencies the participant has an account in; caps are >= 0 and RTGS
      bounds satisfy min <= 0 <= max, so a fresh position (0) is always within them.
    * ``defaulted`` is final: a defaulter is never reinstated.
    * ``MUTATES_IN_PLACE``: every command method raises, if at all, before its event.

Rejections (in precedence order)
    Registering: ``id_must_not_be_zero``, ``id_must_not_be_int_max``,
    ``name_must_not_be_empty``, ``unknown_currency``,
    ``cap_must_not_be_negative``, ``position_bounds_must_include_zero``,
    ``limit_without_account``, ``participant_exists``.
    Changing limits: the same shape rules, then ``participant_defaulted``.
    Changing status: ``unknown_status``, ``participant_defaulted``, ``status_unchanged``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from domain.aggregate import Aggregate
from domain.invariant import invariant
from domain.money import is_currency
from domain.settlement import errors as e
from domain.settlement.events import (
    ParticipantLimitsChanged,
    ParticipantRegistered,
    ParticipantStatusChanged,
)

STATUSES = ("active", "suspended", "defaulted")


def stream_id(participant_id: int) -> str:
    return f"participant:{participant_id}"


@dataclass(frozen=True, slots=True)
class Limits:
    """One participant's limits in one currency. ``None`` is unbounded."""

    cap_minor: int | None  # DNS: -n_i <= cap
    min_position_minor: int  # RTGS: n_i >= min
    max_position_minor: int | None  # RTGS: n_i <= max


@dataclass(frozen=True, slots=True)
class ParticipantSpec:
    participant_id: int
    name: str
    accounts: dict[str, int]
    caps_minor: dict[str, int] = field(default_factory=dict)
    min_positions_minor: dict[str, int] = field(default_factory=dict)
    max_positions_minor: dict[str, int] = field(default_factory=dict)


def _sorted(mapping: dict[str, int]) -> dict[str, int]:
    return {k: mapping[k] for k in sorted(mapping)}


def check_limits(
    participant_id: int,
    accounts: dict[str, int],
    caps: dict[str, int],
    mins: dict[str, int],
    maxs: dict[str, int],
) -> None:
    ids = {"participant_id": participant_id}
    for currency in (*accounts, *caps, *mins, *maxs):
        if not is_currency(currency):
            raise e.UnknownCurrency(f"{currency!r} is not an ISO 4217 currency", **ids)
    for currency, cap in caps.items():
        if cap < 0:
            raise e.CapMustNotBeNegative(
                f"the {currency} net debit cap {cap} is negative", currency=currency, **ids
            )
    for currency in (*mins, *maxs):
        low, high = mins.get(currency, 0), maxs.get(currency)
        if low > 0 or (high is not None and high < 0):
            raise e.PositionBoundsMustIncludeZero(
                f"{currency} bounds [{low}, {high}] do not include 0", currency=currency, **ids
            )
    for currency in (*caps, *mins, *maxs):
        if currency not in accounts:
            raise e.LimitWithoutAccount(
                f"a {currency} limit without a {currency} settlement account",
                currency=currency,
                **ids,
            )


class Participant(Aggregate):
    # Read by every obligation: handed out as the cached object, not a copy (its commands
    # validate before their one event, so a rejection changes nothing).
    MUTATES_IN_PLACE = True

    __slots__ = (
        "_limits",
        "accounts",
        "caps_minor",
        "max_positions_minor",
        "min_positions_minor",
        "name",
        "participant_id",
        "registered_at_ns",
        "status",
    )

    def __init__(self, participant_id: int) -> None:
        super().__init__(stream_id(participant_id))
        self.participant_id = participant_id
        self.name = ""
        self.accounts: dict[str, int] = {}
        self.caps_minor: dict[str, int] = {}
        self.min_positions_minor: dict[str, int] = {}
        self.max_positions_minor: dict[str, int] = {}
        self.status = "active"
        self.registered_at_ns = 0
        self._limits: dict[str, Limits] = {}  # derived from the fields above, per currency

    # ------------------------------------------------------------------ reading

    def limits(self, currency: str) -> Limits:
        found = self._limits.get(currency)
        if found is None:
            found = self._limits[currency] = Limits(
                self.caps_minor.get(currency),
                self.min_positions_minor.get(currency, 0),
                self.max_positions_minor.get(currency),
            )
        return found

    def account(self, currency: str) -> int | None:
        return self.accounts.get(currency)

    # ------------------------------------------------------------------ commands

    @classmethod
    def register(
        cls, spec: ParticipantSpec, existing: Participant | None, now_ns: int
    ) -> Participant:
        ids = {"participant_id": spec.participant_id}
        e.check_ids(
            "participant and account ids", spec.participant_id, *spec.accounts.values(), **ids
        )
        if not spec.name.strip():
            raise e.NameMustNotBeEmpty("a participant needs a name", **ids)
        check_limits(
            spec.participant_id,
            spec.accounts,
            spec.caps_minor,
            spec.min_positions_minor,
            spec.max_positions_minor,
        )
        if existing is not None:
            raise e.ParticipantExists(f"participant {spec.participant_id} is registered", **ids)
        participant = cls(spec.participant_id)
        participant._trigger(
            ParticipantRegistered(
                spec.participant_id,
                spec.name,
                _sorted(spec.accounts),
                _sorted(spec.caps_minor),
                _sorted(spec.min_positions_minor),
                _sorted(spec.max_positions_minor),
                now_ns,
            )
        )
        return participant

    def change_limits(
        self,
        caps: dict[str, int],
        mins: dict[str, int],
        maxs: dict[str, int],
        now_ns: int,
    ) -> None:
        check_limits(self.participant_id, self.accounts, caps, mins, maxs)
        if self.status == "defaulted":
            raise e.ParticipantDefaulted(
                f"participant {self.participant_id} is in default",
                participant_id=self.participant_id,
            )
        self._trigger(
            ParticipantLimitsChanged(
                self.participant_id, _sorted(caps), _sorted(mins), _sorted(maxs), now_ns
            )
        )

    def change_status(self, status: str, reason: str, now_ns: int) -> None:
        ids = {"participant_id": self.participant_id}
        if status not in STATUSES:
            raise e.UnknownStatus(f"status {status!r} is not one of {STATUSES}", **ids)
        if self.status == "defaulted":
            raise e.ParticipantDefaulted(f"participant {self.participant_id} is in default", **ids)
        if status == self.status:
            raise e.StatusUnchanged(f"participant {self.participant_id} is already {status}", **ids)
        self._trigger(
            ParticipantStatusChanged(self.participant_id, status, self.status, reason, now_ns)
        )

    # ------------------------------------------------------------------ apply: assign only

    def apply(self, event: object) -> None:
        self._limits = {}
        if isinstance(event, ParticipantRegistered):
            self.name = event.name
            self.accounts = dict(event.accounts)
            self.caps_minor = dict(event.caps_minor)
            self.min_positions_minor = dict(event.min_positions_minor)
            self.max_positions_minor = dict(event.max_positions_minor)
            self.registered_at_ns = event.registered_at_ns
        elif isinstance(event, ParticipantLimitsChanged):
            self.caps_minor = dict(event.caps_minor)
            self.min_positions_minor = dict(event.min_positions_minor)
            self.max_positions_minor = dict(event.max_positions_minor)
        elif isinstance(event, ParticipantStatusChanged):
            self.status = event.status
        else:  # pragma: no cover - a programming error
            invariant(False, f"Participant cannot apply {type(event).__name__}")

    # ------------------------------------------------------------------ snapshots

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "accounts": _sorted(self.accounts),
            "caps_minor": _sorted(self.caps_minor),
            "min_positions_minor": _sorted(self.min_positions_minor),
            "max_positions_minor": _sorted(self.max_positions_minor),
            "status": self.status,
            "registered_at_ns": self.registered_at_ns,
        }

    @classmethod
    def from_snapshot(cls, stream_id: str, version: int, state: dict[str, Any]) -> Self:
        participant = cls(int(stream_id.split(":", 1)[1]))
        participant.version = version
        participant.name = state["name"]
        participant.accounts = {k: int(v) for k, v in state["accounts"].items()}
        participant.caps_minor = {k: int(v) for k, v in state["caps_minor"].items()}
        participant.min_positions_minor = {
            k: int(v) for k, v in state["min_positions_minor"].items()
        }
        participant.max_positions_minor = {
            k: int(v) for k, v in state["max_positions_minor"].items()
        }
        participant.status = state["status"]
        participant.registered_at_ns = int(state["registered_at_ns"])
        participant._limits = {}
        return participant
