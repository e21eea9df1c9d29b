"""A bank statement as reconciliation reads it: value types, references, the content digest.

Definition
    A :class:`Statement` is one account's statement for a period: its own id (CAMT
    ``Stmt/Id``; empty for CSV), the bank's account identifier, the currency, the period
    (inclusive dates), the opening and closing booked balances when it carries them (CAMT
    ``Bal`` of type ``OPBD``/``CLBD``), and its booked entries.

    An :class:`Entry` is one booked movement: a positive ``amount_minor`` and a ``direction``
    (``credit``: money in, the bank credited the account; ``debit``: money out), its booking
    and value dates, the references it carries (normalised, see :func:`normalise_reference`),
    the bank's own reference and a description.

Guarantees
    * :meth:`Statement.digest` depends on the statement's content only, never on the order of
      its entries: the same statement in another entry order has the same digest.
    * Every value is JSON-safe; amounts are integers of the currency's minor units.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

DIRECTIONS = ("credit", "debit")

_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_IGNORED = frozenset({"", "NOTPROVIDED", "NONREF", "NONE", "N/A"})


def normalise_reference(text: str) -> str:
    """One reference as matching compares it: surrounding space dropped; all digits: the
    number's decimal text (leading zeros dropped); a UUID: its 128-bit integer's decimal text
    (so it meets a ledger ``user_data_128``); anything else unchanged. ``""`` for the
    placeholders banks use for "no reference" (``NOTPROVIDED``, ``NONREF``)."""
    text = text.strip()
    if text.upper() in _IGNORED:
        return ""
    if text.isascii() and text.isdigit():
        return str(int(text))
    if _UUID.fullmatch(text):
        return str(uuid.UUID(text).int)
    return text


def parse_date(text: str) -> str:
    """``YYYY-MM-DD`` (or the date part of an ISO date-time) -> ``YYYY-MM-DD``; ValueError."""
    head = text.strip()[:10]
    if len(head) != 10 or head[4] != "-" or head[7] != "-":
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD")
    return dt.date.fromisoformat(head).isoformat()


@dataclass(frozen=True, slots=True)
class Entry:
    amount_minor: int  # > 0
    direction: str  # credit | debit
    currency: str
    booking_date: str  # YYYY-MM-DD
    value_date: str  # YYYY-MM-DD (the booking date when the statement gives none)
    references: tuple[str, ...] = ()  # normalised, distinct, sorted
    bank_reference: str = ""  # CAMT AcctSvcrRef (or NtryRef)
    description: str = ""

    @property
    def signed_minor(self) -> int:
        """Money in is positive, money out negative (the account holder's view)."""
        return self.amount_minor if self.direction == "credit" else -self.amount_minor

    @property
    def dates(self) -> tuple[str, ...]:
        return tuple(sorted({self.booking_date, self.value_date}))

    def sort_key(self) -> tuple[Any, ...]:
        return (
            self.value_date,
            self.booking_date,
            self.direction,
            self.amount_minor,
            self.references,
            self.bank_reference,
            self.description,
            self.currency,
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "amount_minor": self.amount_minor,
            "direction": self.direction,
            "currency": self.currency,
            "booking_date": self.booking_date,
            "value_date": self.value_date,
            "references": list(self.references),
            "bank_reference": self.bank_reference,
            "description": self.description,
        }

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> Entry:
        return cls(
            int(p["amount_minor"]),
            str(p["direction"]),
            str(p["currency"]),
            str(p["booking_date"]),
            str(p["value_date"]),
            tuple(p.get("references", ())),
            str(p.get("bank_reference", "")),
            str(p.get("description", "")),
        )


def make_references(*texts: str) -> tuple[str, ...]:
    return tuple(sorted({r for r in (normalise_reference(t) for t in texts) if r}))


@dataclass(frozen=True, slots=True)
class Balance:
    amount_minor: int  # signed: positive when the account is in credit at the bank
    currency: str
    date: str


@dataclass(frozen=True, slots=True)
class Statement:
    statement_id: str  # CAMT Stmt/Id; "" for CSV
    account: str  # the bank's account identifier (IBAN, other id); "" for CSV
    currency: str
    period_from: str
    period_to: str
    entries: tuple[Entry, ...] = ()
    opening: Balance | None = None
    closing: Balance | None = None
    format: str = "camt.053"
    extra: dict[str, str] = field(default_factory=dict)

    def canonical(self) -> dict[str, Any]:
        """The content that identifies the statement, entries in canonical order."""
        entries = sorted(self.entries, key=Entry.sort_key)

        def bal(b: Balance | None) -> list[Any] | None:
            return None if b is None else [b.amount_minor, b.currency, b.date]

        return {
            "statement_id": self.statement_id,
            "account": self.account,
            "currency": self.currency,
            "period": [self.period_from, self.period_to],
            "opening": bal(self.opening),
            "closing": bal(self.closing),
            "entries": [e.to_payload() for e in entries],
        }

    def digest(self) -> str:
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
