"""Cases as a state machine with named rejections; sanctions lists as versioned data; flows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from domain.aml import errors as e
from domain.aml.cases import CASE_ORDER, Case
from domain.aml.graph import FlowDeltas
from domain.aml.sanctions import (
    SanctionsList,
    normalise_name,
    parse_json_list,
    parse_sdn_csv,
)
from tests.unit.domain.aml.builders import T0, tx

NOW = T0


def opened(*steps: Callable[[Case], Any]) -> Case:
    case = Case.open("C1", ["alert-1"], "fan-in on H", "ana", None, NOW)
    for step in steps:
        step(case)
    case.collect_events()
    return case


def escalated(c: Case) -> None:
    c.escalate("amounts unexplained", "ana", NOW)


def closed(c: Case) -> None:
    c.close("false_positive", "known payroll", "ana", NOW)


def sar(c: Case) -> None:
    c.file_sar("BSA-123", "Funds gathered from five new senders...", "bob", NOW)


def test_a_case_goes_from_alerts_to_a_filed_sar_with_an_audit_trail() -> None:
    case = opened()
    case.assign("ana", "lead", NOW)
    case.add_note("called the customer", "ana", NOW)
    case.attach_evidence(
        "statement", "s3://evidence/H.pdf", "ab" * 32, "March statement", "ana", NOW
    )
    case.add_alerts(["alert-2", "alert-1"], "ana", NOW)
    case.escalate("amounts unexplained", "ana", NOW)
    case.file_sar("BSA-123", "narrative", "bob", NOW, {"activity": "structuring"})
    events = [type(ev).__name__ for ev in case.collect_events()]
    assert events == [
        "CaseAssigned",
        "CaseNoteAdded",
        "CaseEvidenceAttached",
        "CaseAlertsAdded",
        "CaseEscalated",
        "SarFiled",
    ]
    assert case.status == "sar_filed"
    assert case.alert_ids == ("alert-1", "alert-2")
    assert case.trail[0]["event"] == "CaseOpened"
    assert case.sar is not None and case.sar["details"] == {"activity": "structuring"}


def test_a_closed_case_can_be_reopened_and_worked_again() -> None:
    case = opened(closed)
    assert (case.status, case.disposition) == ("closed", "false_positive")
    case.reopen("new alert on the same account", "ana", NOW)
    case.add_note("looking again", "ana", NOW)
    assert (case.status, case.disposition) == ("open", "")


REJECTIONS: list[tuple[str, Callable[[], Any]]] = [
    ("actor_required", lambda: Case.open("C1", ["a"], "", " ", None, NOW)),
    ("alerts_required", lambda: Case.open("C1", [], "", "ana", None, NOW)),
    ("case_exists", lambda: Case.open("C1", ["a"], "", "ana", opened(), NOW)),
    ("actor_required", lambda: opened().add_note("x", "", NOW)),
    ("text_required", lambda: opened().add_note("  ", "ana", NOW)),
    ("text_required", lambda: opened().assign("", "lead", NOW)),
    (
        "already_assigned",
        lambda: opened(lambda c: c.assign("ana", "l", NOW)).assign("ana", "l", NOW),
    ),
    ("invalid_disposition", lambda: opened().close("guilty", "r", "ana", NOW)),
    ("text_required", lambda: opened().close("no_suspicion", "", "ana", NOW)),
    ("case_closed", lambda: opened(closed).add_note("x", "ana", NOW)),
    ("case_closed", lambda: opened(closed).escalate("r", "ana", NOW)),
    ("case_closed", lambda: opened(closed).close("no_suspicion", "r", "ana", NOW)),
    ("case_not_closed", lambda: opened().reopen("r", "ana", NOW)),
    ("case_already_escalated", lambda: opened(escalated).escalate("r", "ana", NOW)),
    ("case_not_escalated", lambda: opened().file_sar("BSA-1", "n", "bob", NOW)),
    ("text_required", lambda: opened(escalated).file_sar("BSA-1", "", "bob", NOW)),
    ("sar_already_filed", lambda: opened(escalated, sar).file_sar("BSA-2", "n", "bob", NOW)),
    ("sar_already_filed", lambda: opened(escalated, sar).reopen("r", "ana", NOW)),
    ("sar_already_filed", lambda: opened(escalated, sar).add_note("x", "ana", NOW)),
    ("case_closed", lambda: opened(closed).file_sar("BSA-1", "n", "bob", NOW)),
]


@pytest.mark.parametrize(("code", "action"), REJECTIONS, ids=[c for c, _ in REJECTIONS])
def test_a_case_command_against_the_rules_is_refused_and_changes_nothing(
    code: str, action: Callable[[], Any]
) -> None:
    assert code in CASE_ORDER
    with pytest.raises(e.AmlRejection) as caught:
        action()
    assert caught.value.code == code


def test_the_actor_is_checked_before_the_state() -> None:
    with pytest.raises(e.ActorRequired):
        opened(closed).add_note("x", "", NOW)


# ------------------------------------------------------------------ sanctions


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("SMITH, John", "smith john"),
        ("José  Ñúñez-García", "jose nunez garcia"),
        ("Mr. Ali Al-Hassan", "ali al hassan"),
        ("ACME Trading Co., Ltd.", "acme trading"),
        (
            "\u041e\u041e\u041e \u0420\u043e\u043c\u0430\u0448\u043a\u0430",
            "\u0440\u043e\u043c\u0430\u0448\u043a\u0430",
        ),
    ],
)
def test_names_are_normalised_for_screening(raw: str, normal: str) -> None:
    assert normalise_name(raw) == normal


EMPTY_CELLS = ",".join(["-0-"] * 7)
SDN = "\n".join(
    [
        f'36,"AEROCARIBBEAN AIRLINES",-0-,"CUBA",{EMPTY_CELLS},-0-',
        f'306,"BANCO NACIONAL DE CUBA",-0-,"CUBA",{EMPTY_CELLS},'
        "\"a.k.a. 'NATIONAL BANK OF CUBA'.\"",
        f'2674,"ABU SAYYAF GROUP","individual","SDGT",{EMPTY_CELLS},'
        "\"a.k.a. 'AL HARAKAT AL ISLAMIYYA'; a.k.a. 'ASG'.\"",
    ]
)


def test_an_sdn_csv_is_read_with_aliases_from_the_remarks() -> None:
    entries = parse_sdn_csv(SDN)
    assert [x["uid"] for x in entries] == ["36", "306", "2674"]
    assert entries[1]["aliases"] == ["NATIONAL BANK OF CUBA"]
    assert entries[2]["aliases"] == ["AL HARAKAT AL ISLAMIYYA", "ASG"]
    assert entries[0]["programs"] == ["CUBA"]


def test_a_sanctions_list_is_versioned_and_reloading_the_same_content_records_nothing() -> None:
    first = SanctionsList.load("ofac-sdn", parse_sdn_csv(SDN), "SDN.CSV", None, NOW)
    (event,) = first.collect_events()
    assert (event.version, len(event.entries)) == (1, 3)
    with pytest.raises(e.Exists):
        SanctionsList.load("ofac-sdn", parse_sdn_csv(SDN), "SDN.CSV", first, NOW)
    more = parse_json_list({"entries": [{"uid": "x1", "name": "Ivan Petrov"}]})
    SanctionsList.load("ofac-sdn", more, "json", first, NOW)
    assert (first.list_version, len(first.entries)) == (2, 1)


@pytest.mark.parametrize(
    ("entries", "code"),
    [([], "sanctions_list_empty"), ([{"uid": "1", "name": " "}], "invalid_sanctions_entry")],
)
def test_a_bad_sanctions_list_is_refused(entries: list[dict[str, Any]], code: str) -> None:
    with pytest.raises(e.AmlRejection) as caught:
        SanctionsList.load("l", entries, "json", None, NOW)
    assert caught.value.code == code


# ------------------------------------------------------------------ graph flows


def test_flow_deltas_do_not_depend_on_batching_or_order() -> None:
    txns = [
        tx(f"t{i}", T0 + i * 3_600_000_000_000, "A", "B" if i % 2 else "C", "10.00")
        for i in range(6)
    ]
    whole = FlowDeltas()
    for t in txns:
        whole.add(t)
    merged: dict[tuple[str, str, int], list[int]] = {}
    for chunk in (txns[3:], txns[:3][::-1]):
        part = FlowDeltas()
        for t in chunk:
            part.add(t)
        for s, d, w, n, usd, first, last in part.drain():
            row = merged.setdefault((s, d, w), [0, 0, first, last])
            row[0] += n
            row[1] += usd
            row[2], row[3] = min(row[2], first), max(row[3], last)
    assert [(s, d, w, *v) for (s, d, w), v in sorted(merged.items())] == sorted(whole.drain())
