"""Given transactions, when the engine consumes them, then exactly these alerts: every detector.

Each case names the rule it exercises and the subjects (accounts, or ``conductor:<name>``)
expected per typology; an empty set means "no alert of that typology". Threshold edges,
window boundaries, business days in New York, and the benign look-alikes are all here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from domain.aml.model import AccountProfile, Txn
from domain.aml.windows import Windows
from tests.unit.domain.aml.builders import (
    DAY,
    HOUR,
    NS,
    T0,
    ColdBytes,
    at,
    deposit,
    only,
    run,
    tx,
    withdrawal,
)


@dataclass
class Case:
    name: str
    rules: tuple[str, ...]
    txns: Callable[[], list[Txn]]
    expect: dict[str, set[str]]
    profiles: tuple[AccountProfile, ...] = ()
    params: dict[str, object] = field(default_factory=dict)
    monitored_since: int | None = T0 - 60 * DAY


def _cases(
    rules: tuple[str, ...], *cases: tuple[str, Callable[[], list[Txn]], dict[str, set[str]]]
) -> list[Case]:
    return [Case(name, rules, txns, expect) for name, txns, expect in cases]


def _p(account: str, **kw: object) -> AccountProfile:
    return AccountProfile(account, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ CTR

CTR = _cases(
    ("ctr",),
    (
        "one cash deposit of 10,000.01 USD is reported",
        lambda: [deposit("d1", T0, "A", "10000.01")],
        {"ctr": {"A"}},
    ),
    (
        "a cash deposit of exactly 10,000.00 USD is not (the rule is MORE than 10,000)",
        lambda: [deposit("d1", T0, "A", "10000.00")],
        {"ctr": set()},
    ),
    (
        "9,999.99 and 0.02 the same business day are aggregated across branches and conductors",
        lambda: [
            deposit("d1", T0, "A", "9999.99", branch="B1", conductor="P1"),
            deposit("d2", T0 + 5 * HOUR, "A", "0.02", branch="B2", conductor="P2"),
        ],
        {"ctr": {"A"}},
    ),
    (
        "deposits on both sides of New York midnight (one UTC date) are two business days",
        lambda: [
            deposit("d1", at("2025-03-04T04:30:00+00:00"), "A", "6000.00"),  # 23:30 NY, 3rd
            deposit("d2", at("2025-03-04T05:30:00+00:00"), "A", "6000.00"),  # 00:30 NY, 4th
        ],
        {"ctr": set()},
    ),
    (
        "deposits on two UTC dates but one New York evening are one business day",
        lambda: [
            deposit("d1", at("2025-03-03T23:30:00+00:00"), "A", "6000.00"),  # 18:30 NY, 3rd
            deposit("d2", at("2025-03-04T03:00:00+00:00"), "A", "6000.00"),  # 22:00 NY, 3rd
        ],
        {"ctr": {"A"}},
    ),
    (
        "after the switch to daylight time New York midnight is 04:00 UTC",
        lambda: [
            deposit("d1", at("2025-03-10T03:59:59+00:00"), "A", "6000.00"),  # 23:59:59 on 9th
            deposit("d2", at("2025-03-10T04:00:00+00:00"), "A", "6000.00"),  # 00:00 on 10th
        ],
        {"ctr": set()},
    ),
    (
        "cash in and cash out are counted apart, never netted or added",
        lambda: [
            deposit("d1", T0, "A", "6000.00"),
            withdrawal("w1", T0 + HOUR, "A", "6000.00"),
        ],
        {"ctr": set()},
    ),
    (
        "withdrawals of more than 10,000 in a business day are reported",
        lambda: [withdrawal("w1", T0, "A", "5000.00"), withdrawal("w2", T0 + HOUR, "A", "5000.01")],
        {"ctr": {"A"}},
    ),
    (
        "a conductor's cash into two accounts is reported about the conductor",
        lambda: [
            deposit("d1", T0, "A", "6000.00", conductor="P1"),
            deposit("d2", T0 + HOUR, "B", "6000.00", conductor="P1"),
        ],
        {"ctr": {"conductor:P1"}},
    ),
)

# ------------------------------------------------------------------ structuring

STRUCTURING = _cases(
    ("structuring", "ctr"),
    (
        "near-threshold cash on three business days is structuring, and no CTR",
        lambda: [
            deposit("d1", T0, "A", "9500.00"),
            deposit("d2", T0 + 2 * DAY, "A", "9200.00"),
            deposit("d3", T0 + 4 * DAY, "A", "9800.00"),
        ],
        {"structuring": {"A"}, "ctr": set()},
    ),
    (
        "one isolated cash deposit just under the threshold is not (look-alike)",
        lambda: [deposit("d1", T0, "A", "9999.99")],
        {"structuring": set(), "ctr": set()},
    ),
    (
        "10,000.00 is not reportable alone, so three of them on three days are structuring",
        lambda: [deposit(f"d{i}", T0 + i * DAY, "A", "10000.00") for i in range(3)],
        {"structuring": {"A"}, "ctr": set()},
    ),
    (
        "10,000.01 on three days is three CTRs, not structuring",
        lambda: [deposit(f"d{i}", T0 + i * DAY, "A", "10000.01") for i in range(3)],
        {"structuring": set(), "ctr": {"A"}},
    ),
    (
        "two near-threshold deposits at two branches in one day are a split",
        lambda: [
            deposit("d1", T0, "A", "9000.00", branch="B1"),
            deposit("d2", T0 + 2 * HOUR, "A", "9000.00", branch="B2"),
        ],
        {"structuring": {"A"}, "ctr": {"A"}},
    ),
    (
        "two deposits at one branch by one person in a day are not yet a split",
        lambda: [
            deposit("d1", T0, "A", "5100.00", branch="B1", conductor="P1"),
            deposit("d2", T0 + 2 * HOUR, "A", "5100.00", branch="B1", conductor="P1"),
        ],
        {"structuring": set(), "ctr": {"A"}},
    ),
    (
        "three deposits at one branch in a day, over in total, are a split",
        lambda: [
            deposit(f"d{i}", T0 + i * HOUR, "A", "4000.00", branch="B1", conductor="P1")
            for i in range(3)
        ],
        {"structuring": {"A"}, "ctr": {"A"}},
    ),
    (
        "three conductors for one beneficiary within two days are structuring",
        lambda: [
            deposit("d1", T0, "A", "4000.00", conductor="P1"),
            deposit("d2", T0 + DAY, "A", "3500.00", conductor="P2"),
            deposit("d3", T0 + DAY + HOUR, "A", "3000.00", conductor="P3"),
        ],
        {"structuring": {"A"}, "ctr": set()},
    ),
    (
        "a conductor spreading sub-threshold cash over two accounts in a day",
        lambda: [
            deposit("d1", T0, "A", "6000.00", conductor="P1"),
            deposit("d2", T0 + HOUR, "B", "5000.00", conductor="P1"),
        ],
        {"structuring": {"conductor:P1"}, "ctr": {"conductor:P1"}},
    ),
    (
        "near-threshold cash more than fourteen business days apart is not repeated",
        lambda: [
            deposit("d1", T0, "A", "9500.00"),
            deposit("d2", T0 + 14 * DAY, "A", "9500.00"),
            deposit("d3", T0 + 28 * DAY, "A", "9500.00"),
        ],
        {"structuring": set()},
    ),
)

STRUCTURING += [
    Case(
        "a cash-intensive business depositing daily takings is not structuring (look-alike)",
        ("structuring", "ctr"),
        lambda: [
            deposit(f"d{i}", T0 + i * DAY, "R", amount, conductor=f"P{i % 2}", branch=f"B{i % 2}")
            for i, amount in enumerate(
                ["8700.00", "9400.00", "12100.00", "9900.00", "8900.00", "9100.00"]
            )
        ],
        {"structuring": set(), "ctr": {"R"}},
        profiles=(_p("R", segment="business", business_type="restaurant"),),
    ),
    Case(
        "a cash business splitting near-threshold takings within one day is still flagged",
        ("structuring",),
        lambda: [
            deposit("d1", T0, "R", "9000.00", branch="B1"),
            deposit("d2", T0 + HOUR, "R", "9000.00", branch="B2"),
        ],
        {"structuring": {"R"}},
        profiles=(_p("R", segment="business", business_type="restaurant"),),
    ),
    Case(
        "an account depositing cash on twelve recent days expects cash even without KYC",
        ("structuring",),
        lambda: [
            *(deposit(f"r{i}", T0 - 20 * DAY + i * DAY, "R", "2000.00") for i in range(12)),
            *(deposit(f"d{i}", T0 + i * DAY, "R", "9500.00") for i in range(3)),
        ],
        {"structuring": set()},
    ),
]

# ------------------------------------------------------------------ velocity


def _burst(n: int, amount: str, span_s: int = 12 * 3600) -> list[Txn]:
    step = span_s * NS // max(n - 1, 1)
    return [
        tx(f"b{i}", T0 + i * step, "Q" if i % 2 else f"C{i}", f"C{i}" if i % 2 else "Q", amount)
        for i in range(n)
    ]


VELOCITY = _cases(
    ("velocity",),
    (
        "a quiet account bursting into eight transfers in a day",
        lambda: _burst(8, "1000.00"),
        {"velocity": {"Q"}},
    ),
    ("seven transfers are not a burst", lambda: _burst(7, "1000.00"), {"velocity": set()}),
    (
        "eight transfers spanning exactly 24 hours are inside the window",
        lambda: _burst(8, "1000.00", 86_400),
        {"velocity": {"Q"}},
    ),
    (
        "eight transfers spanning 24 hours and a second are not",
        lambda: _burst(8, "1000.00", 86_401),
        {"velocity": set()},
    ),
    (
        "a burst worth under 5,000 is not worth an alert",
        lambda: _burst(8, "624.99"),
        {"velocity": set()},
    ),
    (
        "an account with five transactions in the month before is not quiet",
        lambda: [
            *(tx(f"p{i}", T0 - (5 + i) * DAY, "Q", "X", "50.00") for i in range(5)),
            *_burst(8, "1000.00"),
        ],
        {"velocity": set()},
    ),
)
VELOCITY.append(
    Case(
        "monitoring that began less than a baseline ago cannot call an account quiet",
        ("velocity",),
        lambda: _burst(8, "1000.00"),
        {"velocity": set()},
        monitored_since=None,
    )
)

# ------------------------------------------------------------------ rapid movement

RAPID = _cases(
    ("rapid_movement",),
    (
        "10,000 in and 9,000 out three hours later",
        lambda: [tx("i", T0, "S", "A", "10000.00"), tx("o", T0 + 3 * HOUR, "A", "B", "9000.00")],
        {"rapid_movement": {"A"}},
    ),
    (
        "7,000 of 10,000 out is not most of it",
        lambda: [tx("i", T0, "S", "A", "10000.00"), tx("o", T0 + 3 * HOUR, "A", "B", "7000.00")],
        {"rapid_movement": set()},
    ),
    (
        "out exactly 24 hours later is within hours",
        lambda: [tx("i", T0, "S", "A", "10000.00"), tx("o", T0 + 24 * HOUR, "A", "B", "9000.00")],
        {"rapid_movement": {"A"}},
    ),
    (
        "out 24 hours and a second later is not",
        lambda: [
            tx("i", T0, "S", "A", "10000.00"),
            tx("o", T0 + 24 * HOUR + NS, "A", "B", "9000.00"),
        ],
        {"rapid_movement": set()},
    ),
    (
        "salary followed by rent and bills (60 %) is not rapid movement (look-alike)",
        lambda: [
            tx("s", T0, "EMPLOYER", "A", "4200.00"),
            tx("r", T0 + 3 * HOUR, "A", "LANDLORD", "1600.00"),
            tx("u", T0 + 4 * HOUR, "A", "UTILITY", "500.00"),
            tx("c", T0 + 5 * HOUR, "A", "CARD", "420.00"),
        ],
        {"rapid_movement": set()},
    ),
    (
        "a payment larger than the inflow is other money (a car bought from savings)",
        lambda: [
            tx("s", T0, "EMPLOYER", "A", "5000.00"),
            tx("car", T0 + HOUR, "A", "DEALER", "20000.00"),
        ],
        {"rapid_movement": set()},
    ),
    (
        "cash in and wired out in pieces within hours",
        lambda: [
            deposit("c", T0, "A", "9000.00"),
            tx("o1", T0 + HOUR, "A", "B", "4000.00", channel="wire"),
            tx("o2", T0 + 2 * HOUR, "A", "C", "4000.00", channel="wire"),
        ],
        {"rapid_movement": {"A"}},
    ),
)

# ------------------------------------------------------------------ round amounts

ROUND = _cases(
    ("round_amounts",),
    (
        "three round transfers of 5,000 in a week",
        lambda: [tx(f"r{i}", T0 + i * 2 * DAY, f"S{i}", "A", "5000.00") for i in range(3)],
        {"round_amounts": {"A"}},
    ),
    (
        "two are not enough",
        lambda: [tx(f"r{i}", T0 + i * 2 * DAY, f"S{i}", "A", "5000.00") for i in range(2)],
        {"round_amounts": set()},
    ),
    (
        "5,000.01 is not round",
        lambda: [tx(f"r{i}", T0 + i * DAY, f"S{i}", "A", "5000.01") for i in range(3)],
        {"round_amounts": set()},
    ),
    (
        "round amounts spread over more than seven days are not repeated",
        lambda: [tx(f"r{i}", T0 + i * 4 * DAY, f"S{i}", "A", "5000.00") for i in range(3)],
        {"round_amounts": set()},
    ),
)

# ------------------------------------------------------------------ high-risk jurisdictions

HRJ = _cases(
    ("high_risk_jurisdiction",),
    (
        "a wire to Iran",
        lambda: [tx("w", T0, "A", "X-IR", "2000.00", channel="wire", to_country="IR")],
        {"high_risk_jurisdiction": {"A"}},
    ),
    (
        "a wire from Myanmar",
        lambda: [tx("w", T0, "X-MM", "A", "2000.00", channel="wire", from_country="MM")],
        {"high_risk_jurisdiction": {"A"}},
    ),
    (
        "a wire to Mexico is not high-risk",
        lambda: [tx("w", T0, "A", "X-MX", "2000.00", channel="wire", to_country="MX")],
        {"high_risk_jurisdiction": set()},
    ),
    (
        "999.99 is under the minimum",
        lambda: [tx("w", T0, "A", "X-IR", "999.99", channel="wire", to_country="IR")],
        {"high_risk_jurisdiction": set()},
    ),
    (
        "through an intermediary: A pays B, who wires most of it to North Korea within days",
        lambda: [
            tx("a", T0, "A", "B", "10000.00"),
            tx("w", T0 + 2 * DAY, "B", "X-KP", "9000.00", channel="wire", to_country="KP"),
        ],
        {"high_risk_jurisdiction": {"A", "B"}},
    ),
    (
        "inbound through an intermediary: Syria pays B, who pays A",
        lambda: [
            tx("w", T0, "X-SY", "B", "10000.00", channel="wire", from_country="SY"),
            tx("a", T0 + DAY, "B", "A", "9000.00"),
        ],
        {"high_risk_jurisdiction": {"A", "B"}},
    ),
    (
        "forwarded after the three-day window it is not via the intermediary",
        lambda: [
            tx("a", T0, "A", "B", "10000.00"),
            tx("w", T0 + 3 * DAY + NS, "B", "X-KP", "9000.00", channel="wire", to_country="KP"),
        ],
        {"high_risk_jurisdiction": {"B"}},
    ),
)
HRJ.append(
    Case(
        "money from a holder whose KYC country is high-risk",
        ("high_risk_jurisdiction",),
        lambda: [tx("p", T0, "A", "B", "2000.00")],
        {"high_risk_jurisdiction": {"B"}},
        profiles=(_p("A", country="IR"),),
    )
)

# ------------------------------------------------------------------ fan in / fan out

FAN = _cases(
    ("fan_in", "fan_out"),
    (
        "six new senders of 1,500 within a week into one account",
        lambda: [tx(f"f{i}", T0 + i * DAY, f"S{i}", "H", "1500.00") for i in range(6)],
        {"fan_in": {"H"}, "fan_out": set()},
    ),
    (
        "transfers under 250 are not counted (small gifts are not laundering)",
        lambda: [tx(f"f{i}", T0 + i * HOUR, f"S{i}", "H", "249.99") for i in range(30)],
        {"fan_in": set()},
    ),
    (
        "four new senders are not a fan-in",
        lambda: [tx(f"f{i}", T0 + i * DAY, f"S{i}", "H", "1500.00") for i in range(4)],
        {"fan_in": set()},
    ),
    (
        "a birthday: twenty friends sending 50 each (look-alike)",
        lambda: [
            tx(f"g{i}", T0 + i * 600 * NS, f"F{i}", "H", "50.00", channel="instant")
            for i in range(20)
        ],
        {"fan_in": set()},
    ),
    (
        "senders known from before the window are not new (rent from tenants)",
        lambda: [
            *(tx(f"m{i}", T0 - 30 * DAY + i * HOUR, f"T{i}", "H", "1500.00") for i in range(6)),
            *(tx(f"f{i}", T0 + i * HOUR, f"T{i}", "H", "1500.00") for i in range(6)),
        ],
        {"fan_in": set()},
    ),
    (
        "six new receivers of 1,500 from one account within a week",
        lambda: [tx(f"f{i}", T0 + i * DAY, "H", f"R{i}", "1500.00") for i in range(6)],
        {"fan_out": {"H"}, "fan_in": set()},
    ),
    (
        "new senders spread over more than ten days are not one fan-in",
        lambda: [tx(f"f{i}", T0 + i * 3 * DAY, f"S{i}", "H", "1500.00") for i in range(6)],
        {"fan_in": set()},
    ),
    (
        "a merchant already paid by more than fifty customers is a hub, not a fan-in",
        lambda: [
            *(
                tx(f"c{i}", T0 - 20 * DAY + i * HOUR, f"C{i}", "M", "20.00", channel="card")
                for i in range(55)
            ),
            *(tx(f"f{i}", T0 + i * HOUR, f"S{i}", "M", "1500.00") for i in range(6)),
        ],
        {"fan_in": set()},
    ),
)
FAN.append(
    Case(
        "payroll in the first month of monitoring is history, not a fan-out",
        ("fan_out",),
        lambda: [tx(f"p{i}", T0 + i * NS, "EMPLOYER", f"E{i}", "2500.00") for i in range(20)],
        {"fan_out": set()},
        monitored_since=None,
    )
)
FAN.append(
    Case(
        "KYC individuals paying one in the first month of monitoring are a fan-in",
        ("fan_in",),
        lambda: [tx(f"f{i}", T0 + i * HOUR, f"S{i}", "H", "1500.00") for i in range(6)],
        {"fan_in": {"H"}},
        profiles=tuple(_p(a, segment="individual") for a in ["H", *(f"S{i}" for i in range(6))]),
        monitored_since=None,
    )
)
FAN.append(
    Case(
        "senders without KYC in the first month of monitoring may be old relationships",
        ("fan_in",),
        lambda: [tx(f"f{i}", T0 + i * HOUR, f"S{i}", "H", "1500.00") for i in range(6)],
        {"fan_in": set()},
        profiles=(_p("H", segment="individual"),),
        monitored_since=None,
    )
)
FAN.append(
    Case(
        "a business collecting from six new payers in its first month of monitoring is not",
        ("fan_in",),
        lambda: [tx(f"f{i}", T0 + i * HOUR, f"S{i}", "H", "1500.00") for i in range(6)],
        {"fan_in": set()},
        profiles=(_p("H", segment="business", business_type="real_estate"),),
        monitored_since=None,
    )
)
FAN.append(
    Case(
        "an account opened during monitoring has no warm-up",
        ("fan_in",),
        lambda: [tx(f"f{i}", T0 + i * HOUR, f"S{i}", "NEW", "1500.00") for i in range(6)],
        {"fan_in": {"NEW"}},
        profiles=(
            _p("NEW", opened_ns=T0 - DAY),
            *(_p(f"S{i}", segment="individual") for i in range(6)),
        ),
        monitored_since=T0 - 2 * DAY,  # the warm-up is not over, but NEW opened since
    )
)

# ------------------------------------------------------------------ cycles


def _cycle(hops: int, keep: float = 0.95, gap: int = 6 * HOUR) -> list[Txn]:
    members = [f"K{i}" for i in range(hops)]
    cents = 1_000_000
    out = []
    for i in range(hops):
        amount = f"{cents // 100}.{cents % 100:02d}"
        out.append(tx(f"c{i}", T0 + i * gap, members[i], members[(i + 1) % hops], amount))
        cents = int(cents * keep)
    return out


CYCLES = [
    Case(
        f"funds return to the origin through {n} hops",
        ("cycle",),
        lambda n=n: _cycle(n),
        {"cycle": {"K0"}},
    )  # type: ignore[misc]
    for n in range(2, 8)
] + _cases(
    ("cycle",),
    ("eight hops are longer than max_hops", lambda: _cycle(8), {"cycle": set()}),
    (
        "a hop keeping 65 % breaks the chain (70 % is the floor)",
        lambda: _cycle(3, keep=0.65),
        {"cycle": set()},
    ),
    (
        "a cycle longer than fourteen days is not one",
        lambda: _cycle(3, gap=7 * DAY + NS),
        {"cycle": set()},
    ),
    (
        "out of time order is not a cycle (the money had not arrived yet)",
        lambda: [
            tx("c0", T0, "K0", "K1", "10000.00"),
            tx("c1", T0 + 2 * HOUR, "K1", "K2", "9500.00"),
            tx("c2", T0 + HOUR, "K2", "K0", "9000.00"),
        ],
        {"cycle": set()},
    ),
    (
        "a cycle whose last transfers share a timestamp, arriving in reverse order",
        lambda: [
            tx("c0", T0, "K0", "K1", "10000.00"),
            tx("c2", T0 + HOUR, "K2", "K0", "9000.00"),
            tx("c1", T0 + HOUR, "K1", "K2", "9500.00"),
        ],
        {"cycle": {"K0"}},
    ),
    (
        "a friend paying back 300 is under the cycle's minimum amount",
        lambda: [tx("l", T0, "A", "B", "300.00"), tx("b", T0 + 3 * DAY, "B", "A", "300.00")],
        {"cycle": set()},
    ),
)

# ------------------------------------------------------------------ layering structures


def _scatter_gather(n: int, keep: float = 0.95) -> list[Txn]:
    out = []
    for i in range(n):
        out.append(tx(f"s{i}", T0 + i * HOUR, "O", f"M{i}", "5000.00"))
        out.append(tx(f"g{i}", T0 + DAY + i * HOUR, f"M{i}", "B", f"{int(5000 * keep)}.00"))
    return out


LAYERING = _cases(
    ("scatter_gather", "gather_scatter", "bipartite", "stack"),
    (
        "an origin paying three intermediaries who pass it on to one beneficiary",
        lambda: _scatter_gather(3),
        {"scatter_gather": {"O"}},
    ),
    ("two intermediaries are not enough", lambda: _scatter_gather(2), {"scatter_gather": set()}),
    (
        "intermediaries passing on 120 % are not passing it on",
        lambda: _scatter_gather(3, keep=1.2),
        {"scatter_gather": set()},
    ),
    (
        "three new senders into a hub who then pays three new receivers",
        lambda: [
            *(tx(f"i{i}", T0 + i * HOUR, f"S{i}", "H", "4000.00") for i in range(3)),
            *(tx(f"o{i}", T0 + DAY + i * HOUR, "H", f"R{i}", "3800.00") for i in range(3)),
        ],
        {"gather_scatter": {"H"}},
    ),
    (
        "paying out before gathering is not gather-scatter",
        lambda: [
            *(tx(f"o{i}", T0 + i * HOUR, "H", f"R{i}", "3800.00") for i in range(3)),
            *(tx(f"i{i}", T0 + DAY + i * HOUR, f"S{i}", "H", "4000.00") for i in range(3)),
        ],
        {"gather_scatter": set()},
    ),
    (
        "two senders each paying the same two receivers (a dense bipartite block)",
        lambda: [
            tx(f"b{s}{r}", T0 + (2 * s + r) * HOUR, f"S{s}", f"R{r}", "3000.00")
            for s in range(2)
            for r in range(2)
        ],
        {"bipartite": {"R0", "R1"}, "stack": set()},
    ),
    (
        "three of the four transfers of the block are not a bipartite",
        lambda: [
            tx("b00", T0, "S0", "R0", "3000.00"),
            tx("b01", T0 + HOUR, "S0", "R1", "3000.00"),
            tx("b10", T0 + 2 * HOUR, "S1", "R0", "3000.00"),
        ],
        {"bipartite": set()},
    ),
    (
        "a stack: two senders pay two middle accounts, which pay two receivers",
        lambda: [
            *(
                tx(f"l{s}{m}", T0 + (2 * s + m) * HOUR, f"S{s}", f"M{m}", "4000.00")
                for s in range(2)
                for m in range(2)
            ),
            *(
                tx(f"u{m}{r}", T0 + DAY + (2 * m + r) * HOUR, f"M{m}", f"R{r}", "3900.00")
                for m in range(2)
                for r in range(2)
            ),
        ],
        {"stack": {"R0", "R1"}, "bipartite": {"M0", "M1", "R0", "R1"}},
    ),
)

# ------------------------------------------------------------------ account life

LIFE = [
    Case(
        "an account silent for 200 days (KYC last activity) wakes up and moves 6,000",
        ("dormant_reactivation",),
        lambda: [tx("w", T0, "S", "D", "6000.00")],
        {"dormant_reactivation": {"D"}},
        profiles=(_p("D", last_activity_ns=T0 - 200 * DAY),),
    ),
    Case(
        "silent for 100 days is not dormant",
        ("dormant_reactivation",),
        lambda: [tx("w", T0, "S", "D", "6000.00")],
        {"dormant_reactivation": set()},
        profiles=(_p("D", last_activity_ns=T0 - 100 * DAY),),
    ),
    Case(
        "a dormant account seen in the stream long ago wakes up",
        ("dormant_reactivation",),
        lambda: [tx("old", T0 - 190 * DAY, "D", "X", "10.00"), tx("w", T0, "S", "D", "6000.00")],
        {"dormant_reactivation": {"D"}},
        monitored_since=T0 - 200 * DAY,
    ),
    Case(
        "waking up with 4,000 is under the amount",
        ("dormant_reactivation",),
        lambda: [tx("w", T0, "S", "D", "4000.00")],
        {"dormant_reactivation": set()},
        profiles=(_p("D", last_activity_ns=T0 - 200 * DAY),),
    ),
    Case(
        "an account opened ten days ago moving 12,500 in five transfers",
        ("new_account_burst",),
        lambda: [tx(f"n{i}", T0 + i * HOUR, f"C{i}", "N", "2500.00") for i in range(5)],
        {"new_account_burst": {"N"}},
        profiles=(_p("N", opened_ns=T0 - 10 * DAY),),
    ),
    Case(
        "four transfers are not a burst",
        ("new_account_burst",),
        lambda: [tx(f"n{i}", T0 + i * HOUR, f"C{i}", "N", "3000.00") for i in range(4)],
        {"new_account_burst": set()},
        profiles=(_p("N", opened_ns=T0 - 10 * DAY),),
    ),
    Case(
        "an account opened 40 days ago is not new",
        ("new_account_burst",),
        lambda: [tx(f"n{i}", T0 + i * HOUR, f"C{i}", "N", "2500.00") for i in range(5)],
        {"new_account_burst": set()},
        profiles=(_p("N", opened_ns=T0 - 40 * DAY),),
    ),
]

ALL = CTR + STRUCTURING + VELOCITY + RAPID + ROUND + HRJ + FAN + CYCLES + LAYERING + LIFE


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_detector_table(case: Case) -> None:
    result = run(
        case.txns(),
        only(*case.rules, **case.params),
        case.profiles,
        warm_up_from=case.monitored_since,
    )
    for typology, subjects in case.expect.items():
        assert result.subjects(typology) == subjects, (typology, result.of(typology))


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_detector_table_with_one_account_in_memory_and_the_rest_read_back_as_bytes(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    from domain.aml import detectors

    monkeypatch.setattr(detectors, "NOVELTY_CACHE_MAX", 2)  # and a cache that keeps restarting
    windows = Windows(ColdBytes(), hot_limit=1)
    result = run(
        case.txns(),
        only(*case.rules, **case.params),
        case.profiles,
        warm_up_from=case.monitored_since,
        windows=windows,
    )
    for typology, subjects in case.expect.items():
        assert result.subjects(typology) == subjects, (typology, result.of(typology))
    assert len(windows.hot) <= 1


def test_every_detector_has_cases() -> None:
    from domain.aml.detectors import DETECT

    covered = {rule for case in ALL for rule in case.rules}
    assert set(DETECT) <= covered


def test_a_ctr_cites_every_cash_transaction_of_the_day_and_the_business_day() -> None:
    result = run(
        [
            deposit("d1", T0, "A", "6000.00", branch="B1", conductor="P1"),
            deposit("d2", T0 + HOUR, "A", "5000.00", branch="B2", conductor="P2"),
            deposit("d3", T0 + 2 * HOUR, "A", "100.00", branch="B3", conductor="P3"),
        ],
        only("ctr"),
    )
    (alert,) = result.of("ctr")
    assert alert["transaction_ids"] == ["d1", "d2", "d3"]
    assert alert["episode"] == "in:2025-03-03"
    assert alert["features"]["day_total_usd_minor"] == 1_110_000
    assert alert["features"]["branches"] == 3
    assert alert["features"]["conductors"] == 3


def test_the_ctr_business_day_follows_the_rules_time_zone() -> None:
    # 23:30 and 00:30 New York time are one Tokyo day (13:30 and 14:30 the next day there).
    txns = [
        deposit("d1", at("2025-03-04T04:30:00+00:00"), "A", "6000.00"),
        deposit("d2", at("2025-03-04T05:30:00+00:00"), "A", "6000.00"),
    ]
    assert run(txns, only("ctr")).subjects("ctr") == set()
    assert run(txns, only("ctr", timezone="Asia/Tokyo")).subjects("ctr") == {"A"}


def test_a_cycle_alert_cites_the_hops_in_time_order() -> None:
    result = run(_cycle(4), only("cycle"))
    (alert,) = result.of("cycle")
    assert alert["transaction_ids"] == ["c0", "c1", "c2", "c3"]
    assert alert["account_ids"] == ["K0", "K1", "K2", "K3"]
    assert alert["features"]["hops"] == 4
