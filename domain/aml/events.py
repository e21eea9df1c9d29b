"""AML events: immutable, past-tense facts that carry everything needed to replay them.

Streams
    * ``aml-tx:<id>``: one ``TransactionRecorded`` per ingested transaction (its id is the
      stream, so the store itself refuses a second transaction with the same id).
    * ``aml-account:<account>``: ``AccountProfileRecorded`` each time the KYC record changes.
    * ``aml-rates:USD``: ``RatesSet``, the whole table after each change.
    * ``aml-rule:<rule id>``: ``RuleChanged``, the whole definition after each change.
    * ``aml-sanctions:<list id>``: ``SanctionsListLoaded``, each version of a list.
    * ``aml-case:<case id>``: the case's life.

Payloads hold JSON-safe values only: money in minor units, rates as decimal strings, times in
nanoseconds since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from domain.event import FlatEvent
from domain.frozen import fast_frozen_all

TOPIC_PREFIX = "aml."


@dataclass(frozen=True, slots=True)
class AmlEvent(FlatEvent):
    """Root of the aml events (payload conversion: :class:`domain.event.FlatEvent`)."""


# ------------------------------------------------------------------ transactions


@dataclass(frozen=True, slots=True)
class TransactionRecorded(AmlEvent):
    TOPIC: ClassVar[str] = "aml.TransactionRecorded.v1"
    tx_id: str
    ts_ns: int
    from_account: str
    to_account: str
    amount_minor: int
    currency: str
    channel: str
    kind: str
    from_country: str
    to_country: str
    conducted_by: str
    branch: str
    extra: dict[str, Any]
    recorded_at_ns: int


# ------------------------------------------------------------------ reference data


@dataclass(frozen=True, slots=True)
class AccountProfileRecorded(AmlEvent):
    TOPIC: ClassVar[str] = "aml.AccountProfileRecorded.v1"
    account: str
    name: str
    country: str
    segment: str
    business_type: str
    opened_ns: int | None
    risk_rating: str
    last_activity_ns: int | None
    extra: dict[str, Any]
    recorded_at_ns: int


@dataclass(frozen=True, slots=True)
class RatesSet(AmlEvent):
    """The whole rates table after the change (USD per one major unit, decimal strings)."""

    TOPIC: ClassVar[str] = "aml.RatesSet.v1"
    rates: dict[str, str]
    changed: list[str]
    source: str
    set_at_ns: int


# ------------------------------------------------------------------ rules


@dataclass(frozen=True, slots=True)
class RuleChanged(AmlEvent):
    """The whole definition of a rule at its new version, with who changed it and why."""

    TOPIC: ClassVar[str] = "aml.RuleChanged.v1"
    rule_id: str
    detector: str
    version: int
    enabled: bool
    weight: int
    params: dict[str, Any]
    author: str
    reason: str
    changed_at_ns: int


# ------------------------------------------------------------------ sanctions


@dataclass(frozen=True, slots=True)
class SanctionsListLoaded(AmlEvent):
    """One version of a sanctions list: entries are ``{"uid", "name", "aliases", ...}``."""

    TOPIC: ClassVar[str] = "aml.SanctionsListLoaded.v1"
    list_id: str
    version: int
    source: str
    entries: list[dict[str, Any]]
    digest: str
    loaded_at_ns: int


# ------------------------------------------------------------------ cases


@dataclass(frozen=True, slots=True)
class CaseOpened(AmlEvent):
    TOPIC: ClassVar[str] = "aml.CaseOpened.v1"
    case_id: str
    alert_ids: list[str]
    title: str
    opened_by: str
    at_ns: int


@dataclass(frozen=True, slots=True)
class CaseAlertsAdded(AmlEvent):
    TOPIC: ClassVar[str] = "aml.CaseAlertsAdded.v1"
    case_id: str
    alert_ids: list[str]
    by: str
    at_ns: int


@dataclass(frozen=True, slots=True)
class CaseAssigned(AmlEvent):
    TOPIC: ClassVar[str] = "aml.CaseAssigned.v1"
    case_id: str
    assignee: str
    by: str
    at_ns: int


@dataclass(frozen=True, slots=True)
class CaseNoteAdded(AmlEvent):
    TOPIC: ClassVar[str] = "aml.CaseNoteAdded.v1"
    case_id: str
    text: str
    by: str
    at_ns: int


@dataclass(frozen=True, slots=True)
class CaseEvidenceAttached(AmlEvent):
    TOPIC: ClassVar[str] = "aml.CaseEvidenceAttached.v1"
    case_id: str
    kind: str
    reference: str
    sha256: str
    description: str
    by: str
    at_ns: int


@dataclass(frozen=True, slots=True)
class CaseEscalated(AmlEvent):
    TOPIC: ClassVar[str] = "aml.CaseEscalated.v1"
    case_id: str
    reason: str
    by: str
    at_ns: int


@dataclass(frozen=True, slots=True)
class CaseClosed(AmlEvent):
    TOPIC: ClassVar[str] = "aml.CaseClosed.v1"
    case_id: str
    disposition: str
    reason: str
    by: str
    at_ns: int


@dataclass(frozen=True, slots=True)
class CaseReopened(AmlEvent):
    TOPIC: ClassVar[str] = "aml.CaseReopened.v1"
    case_id: str
    reason: str
    by: str
    at_ns: int


@dataclass(frozen=True, slots=True)
class SarFiled(AmlEvent):
    TOPIC: ClassVar[str] = "aml.SarFiled.v1"
    case_id: str
    filing_reference: str
    narrative: str
    by: str
    at_ns: int
    details: dict[str, Any] = field(default_factory=dict)


EVENT_TYPES: dict[str, type[AmlEvent]] = {
    cls.TOPIC: cls
    for cls in (
        TransactionRecorded,
        AccountProfileRecorded,
        RatesSet,
        RuleChanged,
        SanctionsListLoaded,
        CaseOpened,
        CaseAlertsAdded,
        CaseAssigned,
        CaseNoteAdded,
        CaseEvidenceAttached,
        CaseEscalated,
        CaseClosed,
        CaseReopened,
        SarFiled,
    )
}
fast_frozen_all(EVENT_TYPES.values())  # built per command and per replayed event


class UnknownEventType(ValueError):
    pass


def decode_event(topic: str, payload: dict[str, Any]) -> AmlEvent:
    try:
        cls = EVENT_TYPES[topic]
    except KeyError:
        raise UnknownEventType(f"unknown AML event type {topic!r}") from None
    return cls.from_payload(payload)
