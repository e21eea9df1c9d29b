"""Rules as versioned data; alerts deduplicated, scored and identified deterministically."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest

from domain.aml import errors as e
from domain.aml.alerts import alert_id
from domain.aml.engine import Engine
from domain.aml.model import AccountProfile
from domain.aml.rules import DEFAULT_RULES, DETECTORS, RULE_ORDER, Rule
from tests.unit.domain.aml.builders import DAY, HOUR, T0, deposit, only, run, tx

NOW = T0

# The built-in version 1 of every rule. Changing a default changes what a replay of old
# history raises, so it is a deliberate act: update this digest, and say why in the commit.
DEFAULTS_SHA256 = "9a986034809eea30cd1023e1e4997113765c01e65eb8cd166e773331aca63672"


def _defaults_digest() -> str:
    doc = [DEFAULT_RULES[k].to_payload() for k in sorted(DEFAULT_RULES)]
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def test_the_default_rules_are_pinned() -> None:
    assert _defaults_digest() == DEFAULTS_SHA256


def test_every_detector_has_a_default_rule_at_version_1() -> None:
    assert set(DEFAULT_RULES) == set(DETECTORS)
    assert {r.version for r in DEFAULT_RULES.values()} == {1}


def test_a_change_records_the_whole_definition_at_the_next_version_with_who_and_why() -> None:
    rule = Rule("ctr")
    definition = rule.change(
        {"threshold_usd_minor": 300_000}, "alice", "state rule for casinos", NOW
    )
    (event,) = rule.collect_events()
    assert (definition.version, event.version, event.author, event.reason) == (
        2,
        2,
        "alice",
        "state rule for casinos",
    )
    assert event.params["threshold_usd_minor"] == 300_000
    assert event.params["timezone"] == "America/New_York"  # the rest is carried over
    rule.change({}, "bob", "off for a week", NOW, enabled=False)
    assert rule.definition is not None and rule.definition.version == 3
    assert not rule.definition.enabled


def _change(rule: Rule, params: dict[str, Any], author: str = "a", reason: str = "r") -> None:
    rule.change(params, author, reason, NOW)


@pytest.mark.parametrize(
    ("code", "action"),
    [
        ("author_required", lambda: _change(Rule("ctr"), {}, author=" ")),
        ("reason_required", lambda: _change(Rule("ctr"), {}, reason="")),
        ("unknown_rule", lambda: _change(Rule("no_such_rule"), {"x": 1})),
        ("rule_exists", lambda: Rule.define("ctr", "ctr", {}, None, "a", "r", NOW)),
        ("unknown_detector", lambda: Rule.define("mine", "telepathy", {}, None, "a", "r", NOW)),
        ("unknown_rule_parameter", lambda: _change(Rule("ctr"), {"threshold": 1})),
        ("invalid_rule_parameter", lambda: _change(Rule("ctr"), {"threshold_usd_minor": "10"})),
        ("invalid_rule_parameter", lambda: _change(Rule("ctr"), {"threshold_usd_minor": 0})),
        ("invalid_rule_parameter", lambda: _change(Rule("ctr"), {"timezone": "Mars/Base"})),
        ("invalid_rule_parameter", lambda: _change(Rule("fan_in"), {"window_s": True})),
        (
            "invalid_rule_parameter",
            lambda: _change(Rule("high_risk_jurisdiction"), {"countries": "IR"}),
        ),
        ("rule_unchanged", lambda: _change(Rule("ctr"), {"threshold_usd_minor": 1_000_000})),
    ],
)
def test_a_bad_rule_change_is_refused_with_its_rule(code: str, action: Any) -> None:
    assert code in RULE_ORDER
    with pytest.raises(e.AmlRejection) as caught:
        action()
    assert caught.value.code == code


def test_a_new_rule_may_run_an_existing_detector_with_other_numbers() -> None:
    rule = Rule.define(
        "fan_in_fast",
        "fan_in",
        {"window_s": 2 * 86_400, "min_counterparties": 3},
        None,
        "a",
        "r",
        NOW,
    )
    assert rule.definition is not None
    assert (rule.definition.version, rule.definition.detector) == (1, "fan_in")
    assert rule.definition.params["min_total_usd_minor"] == 500_000


def test_a_rule_version_applies_from_the_position_it_was_consumed_at() -> None:
    engine = Engine(only("ctr"))
    engine.observe(deposit("d1", T0, "A", "5000.00"))
    rule = Rule("ctr")
    engine.set_rule(rule.change({"threshold_usd_minor": 300_000}, "a", "lower", NOW))
    engine.observe(deposit("d2", T0 + DAY, "B", "4000.00"))
    engine.observe(deposit("d3", T0 + DAY, "A", "100.00"))  # A's first day is over
    alerts = [a.to_row() for a in engine.drain()]
    assert [(a["subject"], a["rule_version"]) for a in alerts] == [("B", 2)]


# ------------------------------------------------------------------ alerts


def test_alert_ids_are_deterministic_digests() -> None:
    a = alert_id("fan_in", "H", "", 5)
    assert a == alert_id("fan_in", "H", "", 5)
    assert len(a) == 32 and a != alert_id("fan_in", "H", "", 6)


def _fan_in(start: int, n: int, prefix: str) -> list[Any]:
    return [tx(f"{prefix}{i}", start + i * HOUR, f"{prefix}S{i}", "H", "1500.00") for i in range(n)]


def test_an_ongoing_pattern_updates_its_open_alert_instead_of_raising_another() -> None:
    result = run(_fan_in(T0, 6, "a") + _fan_in(T0 + 3 * DAY, 6, "b"), only("fan_in"))
    (alert,) = result.of("fan_in")
    assert len(alert["transaction_ids"]) == 12
    assert alert["features"]["counterparties"] == 12


def test_after_the_dedup_window_the_same_pattern_raises_a_new_alert() -> None:
    result = run(_fan_in(T0, 6, "a") + _fan_in(T0 + 20 * DAY, 6, "b"), only("fan_in"))
    assert len(result.of("fan_in")) == 2


def test_raised_event_ts_is_the_business_time_of_the_transaction_that_completed_it() -> None:
    result = run(_fan_in(T0, 6, "a"), only("fan_in"))
    (alert,) = result.of("fan_in")
    assert alert["raised_event_ts"] == T0 + 4 * HOUR  # the fifth sender
    assert alert["updated_event_ts"] == T0 + 5 * HOUR
    assert alert["position"] == max(t.position for t in _positions(result, alert))


def _positions(result: Any, alert: dict[str, Any]) -> list[Any]:
    ids = set(alert["transaction_ids"])
    windows = result.engine.accounts
    return [t for account in windows for t in windows[account].ins if t.tx_id in ids]


def test_the_score_is_the_weight_boosted_by_risk_rating_and_alert_history() -> None:
    low = run(_fan_in(T0, 6, "a"), only("fan_in")).of("fan_in")[0]
    assert (low["score"], low["features"]["risk_boost_bps"]) == (50, 10_000)
    high = run(_fan_in(T0, 6, "a"), only("fan_in"), [AccountProfile("H", risk_rating="high")]).of(
        "fan_in"
    )[0]
    assert (high["score"], high["features"]["risk_rating"]) == (75, "high")
    later = run(_fan_in(T0, 6, "a") + _fan_in(T0 + 20 * DAY, 6, "b"), only("fan_in")).of("fan_in")
    assert [a["features"]["prior_alerts"] for a in later] == [0, 1]
    assert [a["score"] for a in later] == [50, 55]


def test_scores_never_exceed_100() -> None:
    rules = [replace(r, weight=100) if r.rule_id == "fan_in" else r for r in only("fan_in")]
    (alert,) = run(_fan_in(T0, 6, "a"), rules, [AccountProfile("H", risk_rating="high")]).of(
        "fan_in"
    )
    assert alert["score"] == 100
