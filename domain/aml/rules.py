"""Rules as data: typed, versioned definitions of what each detector looks for.

Definition
    A rule (stream ``aml-rule:<rule id>``) runs one built-in detector with typed parameters
    (thresholds, windows, lists), a score ``weight`` (0..100), a deduplication window and an
    ``enabled`` flag. Like Tazama's rule configurations, the logic is code and the numbers
    are data: every detector's parameters, their types, bounds and defaults are listed in
    :data:`DETECTORS`.

    Version 1 of every default rule is the built-in definition in :data:`DEFAULT_RULES`
    (frozen: a test pins it). Every change is a command with an author and a reason, recorded
    as ``RuleChanged`` carrying the whole new definition at version + 1. A new rule id may be
    defined for any detector (several rules can run one detector with different numbers).

Guarantees
    * A rule version applies from the log position of its ``RuleChanged`` event on: the
      monitoring projection reads rules and transactions in position order, so a replay
      applies every version exactly where the live run did.
    * Every alert names the rule id and the version that raised it.

Rejections (in precedence order, ``RULE_ORDER``)
    ``author_required``, ``reason_required``, ``unknown_rule`` (change) or ``rule_exists``
    (define), ``unknown_detector``, ``unknown_rule_parameter``, ``invalid_rule_parameter``,
    ``rule_unchanged``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.aggregate import Aggregate
from domain.aml import errors as e
from domain.aml.calendar import DEFAULT_TIMEZONE, is_timezone
from domain.aml.events import RuleChanged
from domain.invariant import invariant

RULE_ORDER: tuple[str, ...] = (
    "author_required",
    "reason_required",
    "unknown_rule",
    "rule_exists",
    "unknown_detector",
    "unknown_rule_parameter",
    "invalid_rule_parameter",
    "rule_unchanged",
)
DAY_S = 86_400
HOUR_S = 3_600


def stream_id(rule_id: str) -> str:
    return f"aml-rule:{rule_id}"


@dataclass(frozen=True, slots=True)
class Param:
    """One typed parameter: ``kind`` is int, bool, timezone or list (of strings)."""

    name: str
    kind: str
    default: Any
    doc: str
    minimum: int = 0
    maximum: int = 10**15

    def check(self, value: Any, rule_id: str) -> Any:
        ids = {"rule_id": rule_id, "parameter": self.name}
        if self.kind == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                raise e.InvalidRuleParameter(f"{self.name} is an integer", **ids)
            if not self.minimum <= value <= self.maximum:
                raise e.InvalidRuleParameter(
                    f"{self.name} lies in {self.minimum}..{self.maximum}", **ids
                )
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise e.InvalidRuleParameter(f"{self.name} is true or false", **ids)
            return value
        if self.kind == "timezone":
            if not isinstance(value, str) or not is_timezone(value):
                raise e.InvalidRuleParameter(f"{self.name} is an IANA time zone name", **ids)
            return value
        invariant(self.kind == "list", f"unknown parameter kind {self.kind}")
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise e.InvalidRuleParameter(f"{self.name} is a list of non-empty strings", **ids)
        return sorted(set(value))


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    name: str
    typology: str
    category: str  # "suspicious" | "report" | "sanctions" | "scoring"
    doc: str
    params: tuple[Param, ...]
    weight: int

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


def _window(default_s: int, doc: str = "the sliding window in business time") -> Param:
    return Param("window_s", "int", default_s, doc, 60, 400 * DAY_S)


_CALENDAR = (
    Param("timezone", "timezone", DEFAULT_TIMEZONE, "business days are local dates here"),
    Param("cutoff_minute", "int", 0, "local minute of the day from which the next day", 0, 1439),
    Param("weekdays_only", "bool", False, "weekend transactions belong to the next Monday"),
)
_HUB = Param(
    "hub_degree",
    "int",
    50,
    "an account with more distinct counterparties than this (seen before the current "
    "timestamp, within 35 days) is a hub, such as a merchant or payroll: not a mule",
    2,
    10**6,
)
_WARMUP = Param(
    "warmup_s",
    "int",
    31 * DAY_S,
    "for a business account or one without KYC, relationships first seen in this first "
    "stretch of monitoring count as history, not as new (monthly payroll, rent and "
    "suppliers first appear then); KYC individuals and accounts opened since have none; a "
    "relationship is new only when new for both parties",
    0,
    400 * DAY_S,
)
_DEDUP = Param(
    "dedup_window_s",
    "int",
    14 * DAY_S,
    "an open alert for the same account and typology last updated within this window is "
    "updated instead of raising a new one",
    0,
    400 * DAY_S,
)
CASH_BUSINESS_TYPES = [
    "bar",
    "car_wash",
    "cash_intensive",
    "convenience_store",
    "gas_station",
    "grocery",
    "laundromat",
    "parking",
    "restaurant",
    "retail",
    "salon",
    "vending",
]
# FATF "black list" (call for action) and "grey list" (increased monitoring), by ISO 3166-1
# code, as published in 2025. A list is data: change it with a rule change when FATF does.
HIGH_RISK_COUNTRIES = sorted(
    [
        "KP", "IR", "MM",  # call for action
        "DZ", "AO", "BO", "BG", "BF", "CM", "CI", "HR", "CD", "HT", "KE", "LA", "LB", "ML",
        "MC", "MZ", "NA", "NP", "NG", "ZA", "SS", "SY", "TZ", "VE", "VN", "YE",
    ]
)  # fmt: skip

DETECTORS: dict[str, DetectorSpec] = {
    d.name: d
    for d in (
        DetectorSpec(
            "ctr",
            "ctr",
            "report",
            "Currency transaction report: cash in (or cash out) of one person totals MORE than "
            "the threshold in one business day, across branches and conductors (31 CFR "
            "1010.311/313). Aggregated per account holder and per conductor; in and out apart.",
            (
                Param("threshold_usd_minor", "int", 1_000_000, "report above this (cents)", 1),
                *_CALENDAR,
                _DEDUP,
            ),
            10,
        ),
        DetectorSpec(
            "structuring",
            "structuring",
            "suspicious",
            "Cash kept under the CTR threshold: (a) repeated near-threshold cash on several "
            "days; (b) several sub-threshold cash transactions in one business day totalling "
            "more than the threshold, at several branches, by several conductors, or three or "
            "more; (c) several conductors for one beneficiary within a few days. Accounts "
            "expecting cash (a cash-intensive business type, or cash deposits on many recent "
            "days) are exempt from (a) and (c), and count only near-threshold amounts in (b).",
            (
                Param("threshold_usd_minor", "int", 1_000_000, "the CTR threshold (cents)", 1),
                Param("near_band_bps", "int", 8_000, "near = at least this share", 1, 10_000),
                Param("min_near_count", "int", 3, "near-threshold cash transactions (a)", 2),
                Param("min_near_days", "int", 2, "on at least this many business days (a)", 1),
                Param("lookback_days", "int", 14, "business days looked back (a)", 1, 400),
                Param("split_min_count", "int", 2, "sub-threshold cash in one day (b)", 2),
                Param("multi_conductor_min", "int", 3, "distinct conductors (c)", 2),
                Param("multi_conductor_days", "int", 3, "business days for (c)", 1, 400),
                Param("regular_days", "int", 12, "cash on this many days = expects cash", 1),
                Param("regular_lookback_days", "int", 30, "days looked back for that", 1, 400),
                Param(
                    "cash_business_types",
                    "list",
                    CASH_BUSINESS_TYPES,
                    "business types that expect cash",
                ),
                *_CALENDAR,
                _DEDUP,
            ),
            60,
        ),
        DetectorSpec(
            "velocity",
            "velocity",
            "suspicious",
            "A burst of transactions on a quiet account: at least min_count in window_s after "
            "a baseline with at most quiet_max_count, on an account seen for longer than the "
            "baseline.",
            (
                _window(DAY_S, "the burst window"),
                Param("min_count", "int", 8, "transactions in the burst window", 2),
                Param("baseline_s", "int", 30 * DAY_S, "the quiet period before it", DAY_S),
                Param("quiet_max_count", "int", 3, "at most this many in the baseline", 0),
                Param("min_total_usd_minor", "int", 500_000, "burst total at least (cents)"),
                _DEDUP,
            ),
            40,
        ),
        DetectorSpec(
            "rapid_movement",
            "rapid_movement",
            "suspicious",
            "Funds out within hours of arrival: an inflow of at least min_in_usd_minor, and "
            "outflows in the window after it (each no larger than max_out_bps of the inflow) "
            "that add up to at least ratio_bps of it.",
            (
                _window(DAY_S, "how soon after the inflow"),
                Param("min_in_usd_minor", "int", 300_000, "inflow at least (cents)", 1),
                Param("ratio_bps", "int", 8_000, "share of the inflow moved out", 1, 10_000),
                Param("max_out_bps", "int", 11_000, "larger outflows are other money", 1),
                _HUB,
                _DEDUP,
            ),
            50,
        ),
        DetectorSpec(
            "round_amounts",
            "round_amounts",
            "suspicious",
            "Repeated round amounts: at least min_count transactions of an account in the "
            "window that are whole multiples of round_unit_major in their currency.",
            (
                _window(7 * DAY_S),
                Param("round_unit_major", "int", 1_000, "multiples of this many major units", 1),
                Param("min_usd_minor", "int", 300_000, "each at least (cents)"),
                Param("min_count", "int", 3, "round transactions in the window", 2),
                _DEDUP,
            ),
            30,
        ),
        DetectorSpec(
            "high_risk_jurisdiction",
            "high_risk_jurisdiction",
            "suspicious",
            "Money to or from a high-risk jurisdiction, directly (a transaction's country or "
            "the account's KYC country) or through an intermediary: money arriving at an "
            "account that within window_s forwards at least forward_bps of it to (or that "
            "had received it from) a high-risk jurisdiction.",
            (
                Param("countries", "list", HIGH_RISK_COUNTRIES, "ISO 3166-1 alpha-2 codes"),
                Param("min_usd_minor", "int", 100_000, "transactions at least (cents)"),
                _window(3 * DAY_S, "the intermediary's forwarding window"),
                Param("forward_bps", "int", 5_000, "share forwarded via the intermediary", 1),
                _DEDUP,
            ),
            50,
        ),
        DetectorSpec(
            "fan_in",
            "fan_in",
            "suspicious",
            "Many new senders into one account within the window: at least min_counterparties "
            "distinct senders (not hubs, relationships that started in the window) whose "
            "transfers of at least min_usd_minor (small gifts are not laundering) total at "
            "least min_total_usd_minor; the receiver is not a hub.",
            (
                _window(10 * DAY_S),
                Param("min_counterparties", "int", 5, "distinct new senders", 2),
                Param("min_usd_minor", "int", 25_000, "each transfer counted at least (cents)"),
                Param("min_total_usd_minor", "int", 500_000, "their total at least (cents)"),
                _WARMUP,
                _HUB,
                _DEDUP,
            ),
            50,
        ),
        DetectorSpec(
            "fan_out",
            "fan_out",
            "suspicious",
            "Many new receivers from one account within the window (the mirror of fan_in).",
            (
                _window(10 * DAY_S),
                Param("min_counterparties", "int", 5, "distinct new receivers", 2),
                Param("min_usd_minor", "int", 25_000, "each transfer counted at least (cents)"),
                Param("min_total_usd_minor", "int", 500_000, "their total at least (cents)"),
                _WARMUP,
                _HUB,
                _DEDUP,
            ),
            50,
        ),
        DetectorSpec(
            "cycle",
            "cycle",
            "suspicious",
            "Funds returning to their origin through min_hops..max_hops transfers in time "
            "order within the window, each hop keeping keep_bps..(10000+grow_bps) of the "
            "previous amount; no hub on the way.",
            (
                _window(14 * DAY_S),
                Param("min_hops", "int", 2, "shortest cycle", 2, 12),
                Param("max_hops", "int", 7, "longest cycle", 2, 12),
                Param("min_usd_minor", "int", 100_000, "each hop at least (cents)"),
                Param("keep_bps", "int", 7_000, "a hop keeps at least this share", 1, 10_000),
                Param("grow_bps", "int", 1_000, "a hop may add at most this share", 0),
                _HUB,
                _DEDUP,
            ),
            70,
        ),
        DetectorSpec(
            "scatter_gather",
            "scatter_gather",
            "suspicious",
            "One origin pays several intermediaries who each pass (keep_bps..10000+grow_bps "
            "of) it on to one beneficiary, in time order within the window.",
            (
                _window(14 * DAY_S),
                Param("min_intermediaries", "int", 3, "distinct intermediaries", 2),
                Param("min_usd_minor", "int", 100_000, "each transfer at least (cents)"),
                Param("keep_bps", "int", 5_000, "an intermediary passes on at least", 1, 10_000),
                Param("grow_bps", "int", 1_000, "and at most 10000 + this", 0),
                _HUB,
                _DEDUP,
            ),
            70,
        ),
        DetectorSpec(
            "gather_scatter",
            "gather_scatter",
            "suspicious",
            "One account gathers from at least min_in new senders and then scatters to at "
            "least min_out new receivers within the window (not a hub; the receivers are not "
            "the senders).",
            (
                _window(14 * DAY_S),
                Param("min_in", "int", 3, "distinct new senders", 2),
                Param("min_out", "int", 3, "distinct new receivers after the first gather", 2),
                Param("min_total_usd_minor", "int", 300_000, "gathered total at least (cents)"),
                _WARMUP,
                _HUB,
                _DEDUP,
            ),
            60,
        ),
        DetectorSpec(
            "bipartite",
            "bipartite",
            "suspicious",
            "A set of senders each paying several members of a set of receivers within the "
            "window (a dense bipartite block: at least min_senders x min_receivers members "
            "and min_edges transfers), none of them hubs.",
            (
                _window(14 * DAY_S),
                Param("min_senders", "int", 2, "senders", 2),
                Param("min_receivers", "int", 2, "receivers", 2),
                Param("min_edges", "int", 4, "transfers between them", 3),
                Param("min_usd_minor", "int", 100_000, "each transfer at least (cents)"),
                _WARMUP,
                _HUB,
                _DEDUP,
            ),
            60,
        ),
        DetectorSpec(
            "stack",
            "stack",
            "suspicious",
            "Stacked bipartite layering: senders pay a middle layer which pays a final layer "
            "(each layer at least min_layer accounts, each middle account fed by at least two "
            "senders and feeding at least two receivers) in time order within the window.",
            (
                _window(14 * DAY_S),
                Param("min_layer", "int", 2, "accounts in each layer", 2),
                Param("min_usd_minor", "int", 100_000, "each transfer at least (cents)"),
                _WARMUP,
                _HUB,
                _DEDUP,
            ),
            70,
        ),
        DetectorSpec(
            "dormant_reactivation",
            "dormant_reactivation",
            "suspicious",
            "An account silent for dormant_s (last activity seen, or the KYC last_activity) "
            "that moves at least min_total_usd_minor within window_s of waking up.",
            (
                Param("dormant_s", "int", 180 * DAY_S, "silence that makes dormant", DAY_S),
                _window(7 * DAY_S, "after waking up"),
                Param("min_total_usd_minor", "int", 500_000, "moved at least (cents)"),
                _DEDUP,
            ),
            40,
        ),
        DetectorSpec(
            "new_account_burst",
            "new_account_burst",
            "suspicious",
            "An account opened (KYC opened) less than new_account_s ago that already moved "
            "at least min_total_usd_minor in at least min_count transactions.",
            (
                Param("new_account_s", "int", 30 * DAY_S, "new for this long", DAY_S),
                Param("min_count", "int", 5, "transactions", 1),
                Param("min_total_usd_minor", "int", 1_000_000, "moved at least (cents)"),
                _DEDUP,
            ),
            40,
        ),
        DetectorSpec(
            "sanctions",
            "sanctions",
            "sanctions",
            "A holder or counterparty name matching an entry of a loaded sanctions list: "
            "normalised names compared by token-set similarity (0..100).",
            (
                Param("min_similarity", "int", 90, "match at this similarity or more", 50, 100),
                Param("min_name_length", "int", 4, "shorter normalised names never match", 1),
                _DEDUP,
            ),
            90,
        ),
        DetectorSpec(
            "scoring",
            "",
            "scoring",
            "The score model: an alert's score is its rule's weight, times the account's risk "
            "boost (low 1, medium, high), times one step per earlier alert on the account in "
            "history_s (up to history_cap_bps), capped at 100.",
            (
                Param("risk_medium_bps", "int", 12_500, "medium risk boost", 0, 100_000),
                Param("risk_high_bps", "int", 15_000, "high risk boost", 0, 100_000),
                Param("history_step_bps", "int", 1_000, "per earlier alert", 0, 100_000),
                Param("history_cap_bps", "int", 5_000, "at most", 0, 100_000),
                Param("history_s", "int", 90 * DAY_S, "earlier alerts counted", 0),
            ),
            0,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class RuleDefinition:
    rule_id: str
    detector: str
    version: int
    enabled: bool
    weight: int
    params: dict[str, Any] = field(default_factory=dict)
    author: str = "built-in"
    reason: str = "default"

    @property
    def spec(self) -> DetectorSpec:
        return DETECTORS[self.detector]

    @property
    def typology(self) -> str:
        return self.spec.typology

    def to_payload(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "detector": self.detector,
            "version": self.version,
            "enabled": self.enabled,
            "weight": self.weight,
            "params": dict(sorted(self.params.items())),
            "author": self.author,
            "reason": self.reason,
        }


DEFAULT_RULES: dict[str, RuleDefinition] = {
    name: RuleDefinition(name, name, 1, True, spec.weight, spec.defaults())
    for name, spec in DETECTORS.items()
}


def definition_of(event: RuleChanged) -> RuleDefinition:
    return RuleDefinition(
        event.rule_id,
        event.detector,
        event.version,
        event.enabled,
        event.weight,
        dict(event.params),
        event.author,
        event.reason,
    )


class Rule(Aggregate):
    """One rule's versions. Without events, a default rule is at its built-in version 1."""

    __slots__ = ("definition",)

    def __init__(self, rule_id: str) -> None:
        super().__init__(stream_id(rule_id))
        self.definition: RuleDefinition | None = DEFAULT_RULES.get(rule_id)

    @classmethod
    def define(
        cls,
        rule_id: str,
        detector: str,
        params: Mapping[str, Any],
        existing: Rule | None,
        author: str,
        reason: str,
        now_ns: int,
        *,
        enabled: bool = True,
        weight: int | None = None,
    ) -> Rule:
        """A new rule for ``detector``: defaults, overridden by ``params``."""
        _check_who(author, reason, rule_id)
        rule = existing if existing is not None else cls(rule_id)
        if rule.definition is not None:
            raise e.RuleExists(f"rule {rule_id} exists; change it instead", rule_id=rule_id)
        spec = DETECTORS.get(detector)
        if spec is None:
            raise e.UnknownDetector(f"no detector named {detector!r}", rule_id=rule_id)
        values = {**spec.defaults(), **_checked(spec, params, rule_id)}
        chosen_weight = spec.weight if weight is None else _checked_weight(weight, rule_id)
        rule._trigger(
            RuleChanged(
                rule_id, detector, 1, enabled, chosen_weight, values, author, reason, now_ns
            )
        )
        return rule

    def change(
        self,
        params: Mapping[str, Any],
        author: str,
        reason: str,
        now_ns: int,
        *,
        enabled: bool | None = None,
        weight: int | None = None,
    ) -> RuleDefinition:
        """A new version of this rule with ``params`` (and ``enabled``, ``weight``) changed."""
        rule_id = self.id.removeprefix("aml-rule:")
        _check_who(author, reason, rule_id)
        current = self.definition
        if current is None:
            raise e.UnknownRule(f"no rule {rule_id}", rule_id=rule_id)
        values = {**current.params, **_checked(current.spec, params, rule_id)}
        new_enabled = current.enabled if enabled is None else enabled
        new_weight = current.weight if weight is None else _checked_weight(weight, rule_id)
        if (values, new_enabled, new_weight) == (current.params, current.enabled, current.weight):
            raise e.RuleUnchanged(f"rule {rule_id} already has these values", rule_id=rule_id)
        self._trigger(
            RuleChanged(
                rule_id,
                current.detector,
                current.version + 1,
                new_enabled,
                new_weight,
                dict(sorted(values.items())),
                author,
                reason,
                now_ns,
            )
        )
        assert self.definition is not None
        return self.definition

    def apply(self, event: object) -> None:
        if isinstance(event, RuleChanged):
            self.definition = definition_of(event)
        else:  # pragma: no cover - a programming error
            invariant(False, f"Rule cannot apply {type(event).__name__}")


def _check_who(author: str, reason: str, rule_id: str) -> None:
    if not isinstance(author, str) or not author.strip():
        raise e.AuthorRequired("a rule change names its author", rule_id=rule_id)
    if not isinstance(reason, str) or not reason.strip():
        raise e.ReasonRequired("a rule change states its reason", rule_id=rule_id)


def _checked(spec: DetectorSpec, params: Mapping[str, Any], rule_id: str) -> dict[str, Any]:
    for name in params:
        if spec.param(name) is None:
            raise e.UnknownRuleParameter(
                f"detector {spec.name} has no parameter {name!r}", rule_id=rule_id, parameter=name
            )
    out: dict[str, Any] = {}
    for name, value in params.items():
        param = spec.param(name)
        assert param is not None
        out[name] = param.check(value, rule_id)
    return out


def _checked_weight(weight: Any, rule_id: str) -> int:
    if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
        raise e.InvalidRuleParameter(
            "weight is an integer in 0..100", rule_id=rule_id, parameter="weight"
        )
    return weight
