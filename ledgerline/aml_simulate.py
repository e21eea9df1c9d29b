"""``ledgerline aml simulate``: a seeded bank's quarter with planted laundering and look-alikes.

Definition
    :func:`simulate` writes four files into a directory:

    * ``transactions.jsonl``: every transaction in business-time order, in the ingest format
      (``id``, ``timestamp``, ``from_account``, ``to_account``, ``amount``, ``currency``,
      ``channel``, ``kind``, ``from_country``, ``to_country``, and for cash ``conducted_by``
      and ``branch``; some records carry extra fields, as real feeds do);
    * ``accounts.jsonl``: the KYC record of every account;
    * ``rates.json``: USD rates of the currencies used;
    * ``truth.json``: the planted patterns (typology, accounts, transaction ids, first and
      last business time), the benign look-alikes, and every CTR obligation (cash of one
      person over 10,000 USD in one New York business day).

Background activity (about 11 transactions per account over 90 days by default): salaries
from employers (biweekly, semi-monthly or monthly), rent to landlords, utility and telecom
bills, card purchases at merchants, ATM withdrawals, payments between friends (sometimes paid
back), remittances abroad, daily cash takings of cash-intensive businesses, supplier invoices.

Planted typologies follow their definitions: FinCEN's structuring (repeated near-threshold
cash, splits in one day across branches, several conductors), CTR aggregation, rapid movement,
round amounts, high-risk jurisdictions (direct and through an intermediary), AMLSim's and
AMLworld's fan-in, fan-out, cycle (2-7 hops, decaying amounts), scatter-gather,
gather-scatter, bipartite and stack, a burst on a quiet account, the reactivation of a dormant
account and a burst on a new account. They start after a two-week warm-up (a deployed system
has history) and use accounts of the ordinary population.

Look-alikes, labelled in ``truth.json``: a cash-intensive business depositing its daily
takings (some days over 10,000 USD: a CTR, not a suspicion), one isolated cash deposit just
under the threshold, a salary followed at once by bills, a birthday fan-in of small gifts.

Guarantees
    The same seed and sizes give byte-identical files.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

NS = 1_000_000_000
DAY_NS = 86_400 * NS
HOUR_NS = 3_600 * NS
TIMEZONE = "America/New_York"
CTR_THRESHOLD_MINOR = 1_000_000
WARMUP_DAYS = 14  # patterns start after this many days (a deployed system has history)
QUIET_DAYS = 40  # a burst on a quiet account needs a month of quiet first

RATES = {
    "USD": "1",
    "EUR": "1.0842",
    "GBP": "1.2710",
    "CAD": "0.7395",
    "MXN": "0.0581",
    "JPY": "0.006735",
    "INR": "0.01201",
    "PHP": "0.01748",
}
REMITTANCE_COUNTRIES = ["MX", "PH", "IN", "GT", "SV", "DO", "CO", "HN", "JM", "PE"]
HIGH_RISK = ["IR", "KP", "MM", "SY", "YE", "VE", "HT", "LB", "SS", "ML"]
FIRST = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Maria Luis Ana Carlos Wei Li "
    "Mohammed Fatima Olga Ivan Aisha Kenji Yuki Priya Raj Sofia Mateo Chloe Noah Emma Liam"
).split()
LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White "
    "Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Nguyen "
    "Kim Chen Patel Singh Kowalski Novak Ivanova Okafor Haddad"
).split()


def _ns_to_rfc3339(ts: int) -> str:
    return datetime.fromtimestamp(ts // NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass
class _Tx:
    ts: int
    src: str
    dst: str
    cents: int
    channel: str
    kind: str = "transfer"
    currency: str = "USD"
    from_country: str = "US"
    to_country: str = "US"
    conductor: str = ""
    branch: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    key: int = 0
    tx_id: str = ""


@dataclass
class _Pattern:
    typology: str
    variant: str
    accounts: list[str]
    txs: list[_Tx]


class _World:
    def __init__(self, seed: int, n_accounts: int, days: int, start: date) -> None:
        self.rng = random.Random(seed)
        self.days = days
        self.start = start
        zone = ZoneInfo(TIMEZONE)
        self.midnights = [
            int(datetime(d.year, d.month, d.day, tzinfo=zone).timestamp()) * NS
            for d in (start + timedelta(days=i) for i in range(days + 1))
        ]
        self.n = n_accounts
        self.profiles: dict[str, dict[str, Any]] = {}
        self.txs: list[_Tx] = []
        self.patterns: list[_Pattern] = []
        self.lookalikes: list[_Pattern] = []
        self.used: set[str] = set()  # accounts taken by a planted pattern or look-alike
        self._seq = 0
        self.dom = [(start + timedelta(days=i)).day for i in range(days)]
        self.days_with_dom: dict[int, list[int]] = defaultdict(list)
        for i, dom in enumerate(self.dom):
            self.days_with_dom[dom].append(i)

    # -------------------------------------------------------------- helpers

    def at(self, day: int, hour: float) -> int:
        """Business time of local ``hour`` (may exceed 24) on ``day``, plus jitter seconds."""
        day = min(max(day, 0), self.days - 1)
        seconds = int(hour * 3600) + self.rng.randrange(0, 600)
        return self.midnights[day] + seconds * NS

    def add(self, tx: _Tx) -> _Tx:
        self._seq += 1
        tx.key = self._seq
        self.txs.append(tx)
        return tx

    def weekday(self, day: int) -> int:
        return (self.start + timedelta(days=day)).weekday()

    def lognormal_cents(self, median: float, sigma: float, lo: float, hi: float) -> int:
        value = median * math.exp(self.rng.gauss(0, sigma))
        return int(min(max(value, lo), hi) * 100)

    def name(self) -> str:
        return f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"

    def profile(self, account: str, segment: str, business_type: str = "", **kw: Any) -> None:
        rating = self.rng.choices(["low", "medium", "high"], [85, 12, 3])[0]
        opened = self.start - timedelta(days=self.rng.randrange(200, 4000))
        record = {
            "account": account,
            "name": kw.pop("name", None) or self.name(),
            "country": kw.pop("country", "US"),
            "segment": segment,
            "business_type": business_type,
            "opened": kw.pop("opened", opened.isoformat()),
            "risk_rating": kw.pop("risk_rating", rating),
        }
        record.update(kw)
        self.profiles[account] = record


def simulate(
    out_dir: Path | str,
    seed: int = 1,
    accounts: int = 20_000,
    days: int = 90,
    start: str = "2025-01-06",
    patterns_per_typology: int = 20,
) -> dict[str, Any]:
    """Generate the four files into ``out_dir`` (created); return a summary."""
    if accounts < 2_000:
        raise ValueError("simulate needs at least 2,000 accounts")
    if days < 60:
        raise ValueError("simulate needs at least 60 days (a warm-up, then patterns)")
    w = _World(seed, accounts, days, date.fromisoformat(start))
    roles = _population(w)
    _background(w, roles)
    _lookalikes(w, roles)
    _plant(w, roles, patterns_per_typology)
    return _write(w, Path(out_dir), seed)


# ------------------------------------------------------------------ population


def _population(w: _World) -> dict[str, list[str]]:
    n = w.n
    ids = [f"A{i:06d}" for i in range(1, n + 1)]
    w.rng.shuffle(ids)
    sizes = {
        "merchant": n // 50,
        "employer": n * 3 // 200,
        "biller": max(n // 500, 10),
        "landlord": n // 200,
        "cash_business": n // 200,
        "supplier": n * 3 // 1000,
        "quiet": n // 25,
        "dormant": n // 200,
        "new": n // 200,
    }
    roles: dict[str, list[str]] = {}
    cursor = 0
    for role, size in sizes.items():
        roles[role] = ids[cursor : cursor + size]
        cursor += size
    roles["individual"] = ids[cursor:]
    for a in roles["merchant"]:
        w.profile(a, "business", w.rng.choice(["retail", "ecommerce", "fuel", "pharmacy"]))
    for a in roles["employer"]:
        w.profile(
            a,
            "business",
            w.rng.choice(["manufacturing", "services", "healthcare", "logistics", "software"]),
        )
    for a in roles["biller"]:
        w.profile(a, "business", w.rng.choice(["utility", "telecom", "insurance", "lender"]))
    for a in roles["landlord"]:  # property managers; private landlords are individuals
        w.profile(a, "business", "real_estate")
    for a in roles["cash_business"]:
        w.profile(
            a,
            "business",
            w.rng.choice(["restaurant", "convenience_store", "laundromat", "car_wash", "bar"]),
        )
    for a in roles["supplier"]:
        w.profile(a, "business", "wholesale")
    for a in (*roles["individual"], *roles["quiet"]):
        country = w.rng.choices(["US", "CA", "GB", "MX"], [96, 2, 1, 1])[0]
        w.profile(a, "individual", country=country)
    for a in roles["dormant"]:
        last = w.start - timedelta(days=w.rng.randrange(200, 700))
        w.profile(a, "individual", last_activity=last.isoformat())
    for i, a in enumerate(roles["new"]):
        opened = w.start + timedelta(days=20 + (i * 53) % (w.days - 35))
        w.profile(a, "individual", opened=opened.isoformat())
    return roles


def _background(w: _World, roles: dict[str, list[str]]) -> None:
    rng = w.rng
    # Employers of very different sizes (a few large, many small); merchants likewise.
    employers = roles["employer"]
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(employers))]
    merchants = roles["merchant"]
    market = _Market(
        roles["landlord"],
        roles["biller"],
        merchants,
        [1.0 / (i + 1) ** 0.6 for i in range(len(merchants))],
        roles["individual"],
    )
    for person in roles["individual"]:
        _person(w, person, rng.choices(employers, weights)[0], market)
    for person in roles["quiet"]:  # one to three card payments in the quarter
        for _ in range(rng.randrange(1, 4)):
            ts = w.at(rng.randrange(0, w.days), 10 + rng.random() * 8)
            merchant = rng.choices(merchants, market.merchant_weights)[0]
            w.add(_Tx(ts, person, merchant, w.lognormal_cents(40, 0.8, 3, 400), "card"))
    for i, person in enumerate(roles["new"]):
        if i % 2:  # half the new accounts live ordinary lives from their opening day
            opened = (date.fromisoformat(w.profiles[person]["opened"]) - w.start).days
            _person(w, person, rng.choices(employers, weights)[0], market, first_day=opened)
    for business in roles["cash_business"]:
        _cash_takings(w, business, roles["supplier"])
    for merchant in merchants:  # half the merchants pay their supplier monthly
        if rng.random() < 0.5:
            supplier = roles["supplier"][_stable(merchant) % len(roles["supplier"])]
            for month in range(w.days // 30):
                ts = w.at(month * 30 + rng.randrange(5, 25), 11)
                invoice = w.lognormal_cents(6000, 0.7, 500, 60000)
                w.add(_Tx(ts, merchant, supplier, invoice, "ach"))


@dataclass
class _Market:
    """Who an ordinary person pays: landlords, billers, merchants (by popularity), friends."""

    landlords: list[str]
    billers: list[str]
    merchants: list[str]
    merchant_weights: list[float]
    individuals: list[str]


def _person(w: _World, person: str, employer: str, market: _Market, first_day: int = 0) -> None:
    _salary(w, person, employer, first_day)
    _bills(w, person, market, first_day)
    _spending(w, person, market, first_day)
    _friends_and_family(w, person, market, first_day)


def _salary(w: _World, person: str, employer: str, first_day: int) -> None:
    """Biweekly Fridays, semi-monthly (1st and 15th) or monthly (1st)."""
    rng = w.rng
    schedule = rng.choices(["biweekly", "semimonthly", "monthly"], [45, 30, 25])[0]
    pay = w.lognormal_cents(2400 if schedule != "monthly" else 4600, 0.45, 600, 15000)
    if schedule == "biweekly":
        first_friday = (4 - w.weekday(0)) % 7 + 7 * rng.randrange(0, 2)
        paydays = list(range(first_friday, w.days, 14))
    else:
        fifteenth = w.days_with_dom[15] if schedule == "semimonthly" else []
        paydays = sorted(w.days_with_dom[1] + fifteenth)
    for d in paydays:
        if d >= first_day:
            w.add(_Tx(w.at(d, 6), employer, person, pay + rng.randrange(-500, 500), "ach"))


def _bills(w: _World, person: str, market: _Market, first_day: int) -> None:
    """Rent (six people in ten; one in ten of them to a private landlord, an individual)
    early in the month, a utility bill mid-month."""
    rng = w.rng
    landlord = ""
    if rng.random() < 0.6:
        private = rng.random() < 0.1
        landlord = rng.choice(market.individuals if private else market.landlords)
    rent = w.lognormal_cents(1400, 0.35, 500, 6000)
    utility = rng.choice(market.billers)
    if landlord:
        for d in w.days_with_dom[1 + _stable(person) % 5]:
            if d >= first_day:
                w.add(_Tx(w.at(d, 9 + rng.random() * 10), person, landlord, rent, "ach"))
    for d in w.days_with_dom[10 + _stable(person) % 15]:
        if d >= first_day and rng.random() < 0.9:
            bill = w.lognormal_cents(90, 0.5, 15, 600)
            w.add(_Tx(w.at(d, 8 + rng.random() * 12), person, utility, bill, "ach"))


def _spending(w: _World, person: str, market: _Market, first_day: int) -> None:
    """Card purchases at popular merchants, and ATM withdrawals."""
    rng = w.rng
    active = (w.days - first_day) / 90
    for _ in range(_poisson(rng, 2.2 * active)):
        d = rng.randrange(first_day, w.days)
        merchant = rng.choices(market.merchants, market.merchant_weights)[0]
        price = w.lognormal_cents(45, 0.9, 2, 2500)
        w.add(_Tx(w.at(d, 7 + rng.random() * 15), person, merchant, price, "card"))
    for _ in range(_poisson(rng, 0.6 * active)):
        d = rng.randrange(first_day, w.days)
        cents = rng.choice([4000, 6000, 10000, 20000, 30000])
        atm = f"ATM{rng.randrange(1, 400):03d}"
        w.add(
            _Tx(
                w.at(d, 8 + rng.random() * 14),
                person,
                "CASH",
                cents,
                "cash",
                "cash_withdrawal",
                branch=atm,
            )
        )


def _friends_and_family(w: _World, person: str, market: _Market, first_day: int) -> None:
    """Now and then a payment to a friend (sometimes paid back); remittances home."""
    rng = w.rng
    if rng.random() < 0.35:
        friend = rng.choice(market.individuals)
        if friend != person:
            d = rng.randrange(first_day, w.days)
            cents = w.lognormal_cents(80, 0.9, 5, 1500)
            w.add(_Tx(w.at(d, 12 + rng.random() * 10), person, friend, cents, "instant"))
            if rng.random() < 0.3 and d + 3 < w.days:
                back = w.at(d + rng.randrange(1, 10), 12 + rng.random() * 8)
                w.add(_Tx(back, friend, person, cents, "instant"))
    if rng.random() < 0.05:  # remittances home, monthly
        country = rng.choice(REMITTANCE_COUNTRIES)
        agent = f"X-REMIT-{country}"
        amount = w.lognormal_cents(300, 0.5, 50, 2000)
        for d in range(first_day + rng.randrange(0, 30), w.days, 30):
            w.add(
                _Tx(
                    w.at(d, 18),
                    person,
                    agent,
                    amount,
                    "wire",
                    to_country=country,
                    extra={"purpose": "family support"},
                )
            )


def _cash_takings(w: _World, business: str, suppliers: list[str]) -> None:
    """Daily takings of a cash-intensive business: deposited most business days by one of two
    employees at one of two branches; some days over 10,000 USD (a CTR, not a suspicion)."""
    rng = w.rng
    level = w.lognormal_cents(5500, 0.4, 1500, 12000)
    staff = [f"P-{business}-{k}" for k in (1, 2)]
    branches = [f"BR{rng.randrange(1, 60):03d}" for _ in (1, 2)]
    supplier = suppliers[_stable(business) % len(suppliers)]
    takings: list[_Tx] = []
    for d in range(w.days):
        if w.weekday(d) == 6 or rng.random() < 0.1:
            continue
        cents = int(level * math.exp(rng.gauss(0, 0.35)))
        takings.append(
            w.add(
                _Tx(
                    w.at(d, 16 + rng.random() * 3),
                    "CASH",
                    business,
                    cents,
                    "cash",
                    "cash_deposit",
                    conductor=rng.choice(staff),
                    branch=rng.choice(branches),
                )
            )
        )
        if d % 14 == 3:
            w.add(_Tx(w.at(d, 11), business, supplier, int(level * 5), "ach"))
    w.lookalikes.append(_Pattern("cash_business_takings", "daily_takings", [business], takings))
    w.used.add(business)


def _stable(account: str) -> int:
    """A per-account number that is the same in every process (``hash`` is salted)."""
    return sum(ord(c) * (i + 1) for i, c in enumerate(account))


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


# ------------------------------------------------------------------ look-alikes


def _take(w: _World, pool: list[str], n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        a = w.rng.choice(pool)
        if a not in w.used:
            w.used.add(a)
            out.append(a)
    return out


def _lookalikes(w: _World, roles: dict[str, list[str]]) -> None:
    rng = w.rng
    people = roles["individual"]
    count = max(10, w.n // 400)
    for person in _take(w, people, count):  # one cash deposit just under the threshold
        d = rng.randrange(WARMUP_DAYS, w.days - 1)
        tx = w.add(
            _Tx(
                w.at(d, 10 + rng.random() * 6),
                "CASH",
                person,
                rng.randrange(900_000, 999_999),
                "cash",
                "cash_deposit",
                conductor=f"P-{person}",
                branch=f"BR{rng.randrange(1, 60):03d}",
            )
        )
        w.lookalikes.append(_Pattern("isolated_near_threshold", "single_deposit", [person], [tx]))
    for person in _take(w, people, count):  # salary, then most bills at once
        d = rng.randrange(WARMUP_DAYS, w.days - 2)
        salary = w.lognormal_cents(4200, 0.3, 2500, 9000)
        employer = rng.choice(roles["employer"])
        txs = [w.add(_Tx(w.at(d, 6), employer, person, salary, "ach"))]
        share = rng.uniform(0.45, 0.72)
        payees = [*rng.sample(roles["biller"], 2), rng.choice(roles["landlord"])]
        splits = [0.55, 0.25, 0.20]
        for payee, part in zip(payees, splits, strict=True):
            txs.append(
                w.add(
                    _Tx(
                        w.at(d, 9 + rng.random() * 10),
                        person,
                        payee,
                        int(salary * share * part),
                        "ach",
                    )
                )
            )
        w.lookalikes.append(
            _Pattern("salary_then_bills", "same_day", [person, employer, *payees], txs)
        )
    for person in _take(w, people, count):  # a birthday: many small gifts in a day or two
        d = rng.randrange(WARMUP_DAYS, w.days - 2)
        friends = rng.sample(people, rng.randrange(8, 26))
        txs = [
            w.add(
                _Tx(
                    w.at(d + rng.randrange(0, 2), 8 + rng.random() * 14),
                    f,
                    person,
                    rng.choice([2000, 2500, 5000, 5000, 10000, 15000, 20000]),
                    rng.choice(["instant", "instant", "ach"]),
                )
            )
            for f in friends
            if f != person
        ]
        w.lookalikes.append(_Pattern("birthday_fan_in", "gifts", [person, *friends], txs))


# ------------------------------------------------------------------ planted typologies


def _plant(w: _World, roles: dict[str, list[str]], per: int) -> None:
    planter = _Planter(w, roles)
    for typology in (
        "structuring",
        "velocity",
        "rapid_movement",
        "round_amounts",
        "high_risk_jurisdiction",
        "fan_in",
        "fan_out",
        "cycle",
        "scatter_gather",
        "gather_scatter",
        "bipartite",
        "stack",
        "dormant_reactivation",
        "new_account_burst",
    ):
        for i in range(per):
            variant, accounts, txs = getattr(planter, typology)(i)
            w.patterns.append(_Pattern(typology, variant, accounts, txs))


class _Planter:
    """One method per typology: plants instance ``i`` and returns (variant, accounts, txs)."""

    def __init__(self, w: _World, roles: dict[str, list[str]]) -> None:
        self.w = w
        self.rng = w.rng
        self.people = roles["individual"]
        self.quiet = roles["quiet"]
        self.dormant = roles["dormant"]
        self.new = [a for k, a in enumerate(roles["new"]) if k % 2 == 0]

    def day(self, after: int = WARMUP_DAYS) -> int:
        return self.rng.randrange(after, self.w.days - 6)

    def cents(self, low: float, high: float) -> int:
        return int(self.rng.uniform(low, high) * 100)

    def channel(self, *choices: str) -> str:
        return self.rng.choice(choices or ("ach", "instant", "wire"))

    def tx(self, ts: int, src: str, dst: str, cents: int, channel: str, **kw: Any) -> _Tx:
        return self.w.add(_Tx(ts, src, dst, cents, channel, **kw))

    def at(self, day: int, earliest: float, spread: float) -> int:
        return self.w.at(day, earliest + self.rng.random() * spread)

    def take(self, n: int, pool: list[str] | None = None) -> list[str]:
        return _take(self.w, self.people if pool is None else pool, n)

    def deposit(self, ts: int, account: str, cents: int, conductor: str) -> _Tx:
        branch = f"BR{self.rng.randrange(1, 60):03d}"
        kw = {"conductor": conductor, "branch": branch}
        return self.tx(ts, "CASH", account, cents, "cash", kind="cash_deposit", **kw)

    # -------------------------------------------------------------- typologies

    def structuring(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        rng = self.rng
        (acct,) = self.take(1)
        d0 = self.day()
        variant = ("repeated_near_threshold", "split_within_day", "multiple_conductors")[i % 3]
        if variant == "repeated_near_threshold":  # near the threshold on several days
            days = sorted(rng.sample(range(d0, min(d0 + 12, self.w.days)), rng.randrange(3, 6)))
            txs = [
                self.deposit(self.at(d, 10, 7), acct, self.cents(8_500, 9_950), f"P-{acct}")
                for d in days
            ]
        elif variant == "split_within_day":  # one day, several branches, over in total
            n = rng.randrange(2, 5)
            txs = [
                self.deposit(
                    self.at(d0, 9 + k * 2, 1),
                    acct,
                    self.cents(11_000 / n + 300, 9_800),
                    f"P-{acct}",
                )
                for k in range(n)
            ]
        else:  # several conductors for one beneficiary within two days
            txs = [
                self.deposit(
                    self.at(d0 + rng.randrange(0, 2), 9, 8),
                    acct,
                    self.cents(3_000, 6_000),
                    f"P-smurf-{i}-{k}",
                )
                for k in range(rng.randrange(3, 6))
            ]
        return variant, [acct], txs

    def velocity(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        (acct,) = self.take(1, self.quiet)
        cps = self.take(4)
        d0 = self.day(QUIET_DAYS)
        n = self.rng.randrange(9, 16)
        txs = []
        for k in range(n):
            ts = self.w.at(d0, 8 + k * (12 / n))
            cp = self.rng.choice(cps)
            if k % 2 == 0:
                txs.append(self.tx(ts, cp, acct, self.cents(800, 3_000), "instant"))
            else:
                txs.append(self.tx(ts, acct, cp, self.cents(500, 2_500), "instant"))
        return "quiet_account_burst", [acct, *cps], txs

    def rapid_movement(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        acct, source, *outs = self.take(2 + self.rng.randrange(1, 4))
        inflow = self.cents(6_000, 60_000)
        first = self.tx(self.at(self.day(), 9, 4), source, acct, inflow, "wire")
        parts = _split(self.rng, int(inflow * self.rng.uniform(0.85, 0.98)), len(outs))
        txs = [first]
        for k, (o, part) in enumerate(zip(outs, parts, strict=True)):
            ts = first.ts + self.rng.randrange(1, 18) * HOUR_NS + k
            txs.append(self.tx(ts, acct, o, part, self.channel("wire", "instant")))
        return "in_then_out", [acct, source, *outs], txs

    def round_amounts(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        acct, *cps = self.take(3)
        d0 = self.day()
        amounts = [3_000, 5_000, 8_000, 10_000, 15_000, 20_000]
        txs = [
            self.tx(
                self.at(d0 + self.rng.randrange(0, 6), 10, 6),
                self.rng.choice(cps),
                acct,
                self.rng.choice(amounts) * 100,
                self.channel("wire", "ach"),
            )
            for _ in range(self.rng.randrange(3, 6))
        ]
        return "round_transfers", [acct, *cps], txs

    def high_risk_jurisdiction(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        country = self.rng.choice(HIGH_RISK)
        foreign = f"X-{country}-{i}"
        d0 = self.day()
        if i % 2 == 0:
            (acct,) = self.take(1)
            amount = self.cents(2_000, 40_000)
            if i % 4 == 0:
                tx = self.tx(self.w.at(d0, 14), acct, foreign, amount, "wire", to_country=country)
            else:
                tx = self.tx(self.w.at(d0, 14), foreign, acct, amount, "wire", from_country=country)
            return "direct", [acct], [tx]
        origin, intermediary = self.take(2)
        first = self.tx(self.w.at(d0, 10), origin, intermediary, self.cents(5_000, 30_000), "wire")
        ts = first.ts + self.rng.randrange(2, 40) * HOUR_NS
        onward = int(first.cents * self.rng.uniform(0.8, 0.97))
        second = self.tx(ts, intermediary, foreign, onward, "wire", to_country=country)
        return "via_intermediary", [origin, intermediary], [first, second]

    def fan_in(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        hub, *senders = self.take(1 + self.rng.randrange(5, 13))
        d0, span = self.day(), self.rng.randrange(1, 8)
        txs = [
            self.tx(
                self.at(d0 + self.rng.randrange(0, span), 9, 10),
                s,
                hub,
                self.cents(1_000, 9_000),
                self.channel(),
            )
            for s in senders
        ]
        return "many_to_one", [hub, *senders], txs

    def fan_out(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        hub, *receivers = self.take(1 + self.rng.randrange(5, 13))
        d0, span = self.day(), self.rng.randrange(1, 8)
        txs = [
            self.tx(
                self.at(d0 + self.rng.randrange(0, span), 9, 10),
                hub,
                r,
                self.cents(1_000, 9_000),
                self.channel(),
            )
            for r in receivers
        ]
        return "one_to_many", [hub, *receivers], txs

    def cycle(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        hops = 2 + i % 6
        members = self.take(hops)
        ts = self.at(self.day(), 9, 6)
        cents = self.cents(5_000, 50_000)
        txs = []
        for k in range(hops):
            txs.append(self.tx(ts, members[k], members[(k + 1) % hops], cents, self.channel()))
            ts += self.rng.randrange(1, 40) * HOUR_NS
            cents = int(cents * self.rng.uniform(0.90, 0.99))
        return f"{hops}_hops", members, txs

    def scatter_gather(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        origin, bene, *mids = self.take(2 + self.rng.randrange(3, 7))
        d0 = self.day()
        txs = []
        for m in mids:
            cents = self.cents(2_000, 9_000)
            ts = self.at(d0 + self.rng.randrange(0, 3), 9, 8)
            txs.append(self.tx(ts, origin, m, cents, self.channel("ach", "instant")))
            later = ts + self.rng.randrange(4, 96) * HOUR_NS
            onward = int(cents * self.rng.uniform(0.88, 0.98))
            txs.append(self.tx(later, m, bene, onward, self.channel("ach", "instant")))
        return "via_intermediaries", [origin, bene, *mids], txs

    def gather_scatter(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        hub, *others = self.take(1 + self.rng.randrange(6, 12))
        cut = len(others) // 2
        senders, receivers = others[:cut], others[cut:]
        d0 = self.day()
        txs = []
        for s in senders:
            ts = self.at(d0 + self.rng.randrange(0, 3), 9, 8)
            txs.append(self.tx(ts, s, hub, self.cents(2_000, 9_000), self.channel()))
        total = sum(t.cents for t in txs)
        parts = _split(self.rng, int(total * self.rng.uniform(0.85, 0.97)), len(receivers))
        for r, part in zip(receivers, parts, strict=True):
            ts = self.at(d0 + 3 + self.rng.randrange(0, 3), 9, 8)
            txs.append(self.tx(ts, hub, r, part, self.channel()))
        return "in_then_out", [hub, *others], txs

    def bipartite(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        n_s, n_r = self.rng.randrange(2, 4), self.rng.randrange(2, 5)
        members = self.take(n_s + n_r)
        d0 = self.day()
        txs = [
            self.tx(
                self.at(d0 + self.rng.randrange(0, 4), 9, 8),
                s,
                r,
                self.cents(1_500, 9_000),
                self.channel(),
            )
            for s in members[:n_s]
            for r in members[n_s:]
        ]
        return f"{n_s}x{n_r}", members, txs

    def stack(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        sizes = [self.rng.randrange(2, 4) for _ in range(3)]
        members = self.take(sum(sizes))
        a, b = sizes[0], sizes[0] + sizes[1]
        senders, middle, receivers = members[:a], members[a:b], members[b:]
        d0 = self.day()
        txs = [
            self.tx(
                self.at(d0 + self.rng.randrange(0, 2), 9, 8),
                s,
                m,
                self.cents(2_000, 9_000),
                self.channel("ach", "instant"),
            )
            for s in senders
            for m in middle
        ]
        txs += [
            self.tx(
                self.at(d0 + 2 + self.rng.randrange(0, 3), 9, 8),
                m,
                r,
                self.cents(1_500, 8_000),
                self.channel("ach", "instant"),
            )
            for m in middle
            for r in receivers
        ]
        return "x".join(map(str, sizes)), members, txs

    def dormant_reactivation(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        acct = self.dormant[i % len(self.dormant)]
        self.w.used.add(acct)
        source, dest = self.take(2)
        cents = self.cents(6_000, 40_000)
        first = self.tx(self.w.at(self.day(), 11), source, acct, cents, "wire")
        ts = first.ts + self.rng.randrange(2, 72) * HOUR_NS
        second = self.tx(ts, acct, dest, int(cents * self.rng.uniform(0.5, 0.95)), "wire")
        return "wakes_and_moves", [acct, source, dest], [first, second]

    def new_account_burst(self, i: int) -> tuple[str, list[str], list[_Tx]]:
        acct = self.new[i % len(self.new)]
        self.w.used.add(acct)
        opened = (date.fromisoformat(self.w.profiles[acct]["opened"]) - self.w.start).days
        cps = self.take(4)
        txs = []
        for k in range(self.rng.randrange(6, 14)):
            ts = self.at(min(opened + self.rng.randrange(0, 12), self.w.days - 1), 9, 9)
            cp = self.rng.choice(cps)
            if k % 2 == 0:
                txs.append(self.tx(ts, cp, acct, self.cents(1_500, 7_000), self.channel()))
            else:
                txs.append(self.tx(ts, acct, cp, self.cents(1_000, 6_000), self.channel()))
        return "first_weeks", [acct, *cps], txs


def _split(rng: random.Random, total: int, n: int) -> list[int]:
    weights = [rng.uniform(0.6, 1.4) for _ in range(n)]
    s = sum(weights)
    parts = [int(total * x / s) for x in weights]
    parts[-1] += total - sum(parts)
    return parts


# ------------------------------------------------------------------ output


def _write(w: _World, out: Path, seed: int) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    w.txs.sort(key=lambda t: (t.ts, t.key))
    for i, t in enumerate(w.txs, start=1):
        t.tx_id = f"T{i:08d}"
    with (out / "transactions.jsonl").open("w", encoding="utf-8") as fh:
        for t in w.txs:
            record: dict[str, Any] = {
                "id": t.tx_id,
                "timestamp": _ns_to_rfc3339(t.ts),
                "from_account": t.src,
                "to_account": t.dst,
                "amount": _money(t.cents),
                "currency": t.currency,
                "channel": t.channel,
                "kind": t.kind,
                "from_country": t.from_country,
                "to_country": t.to_country,
            }
            if t.kind != "transfer":
                record["conducted_by"] = t.conductor
                record["branch"] = t.branch
            record.update(t.extra)
            fh.write(json.dumps(record, separators=(",", ":")) + "\n")
    with (out / "accounts.jsonl").open("w", encoding="utf-8") as fh:
        for account in sorted(w.profiles):
            fh.write(json.dumps(w.profiles[account], separators=(",", ":"), sort_keys=True) + "\n")
    (out / "rates.json").write_text(
        json.dumps({"rates": RATES, "source": "simulated", "as_of": w.start.isoformat()}, indent=1)
        + "\n"
    )
    truth: dict[str, Any] = {
        "seed": seed,
        "accounts": w.n,
        "days": w.days,
        "start": w.start.isoformat(),
        "timezone": TIMEZONE,
        "transactions": len(w.txs),
        "patterns": [_pattern_json(f"P{i:05d}", p) for i, p in enumerate(w.patterns, start=1)],
        "lookalikes": [_pattern_json(f"L{i:05d}", p) for i, p in enumerate(w.lookalikes, start=1)],
        "ctr_obligations": _ctr_obligations(w),
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    counts: dict[str, int] = defaultdict(int)
    for p in w.patterns:
        counts[p.typology] += 1
    return {
        "transactions": len(w.txs),
        "accounts": len(w.profiles),
        "patterns": dict(sorted(counts.items())),
        "lookalikes": len(w.lookalikes),
        "ctr_obligations": len(truth["ctr_obligations"]),
    }


def _pattern_json(pattern_id: str, p: _Pattern) -> dict[str, Any]:
    ordered = sorted(p.txs, key=lambda t: (t.ts, t.tx_id))
    return {
        "pattern_id": pattern_id,
        "typology": p.typology,
        "variant": p.variant,
        "accounts": sorted(set(p.accounts)),
        "transaction_ids": [t.tx_id for t in ordered],
        "start_ts": _ns_to_rfc3339(ordered[0].ts),
        "end_ts": _ns_to_rfc3339(ordered[-1].ts),
    }


def _ctr_obligations(w: _World) -> list[dict[str, Any]]:
    """Cash of one person (account holder, or a conductor over several accounts) over the
    threshold in one New York business day, cash in and cash out apart."""
    zone = ZoneInfo(TIMEZONE)
    groups: dict[tuple[str, str, str], list[_Tx]] = defaultdict(list)
    for t in w.txs:
        if t.kind == "transfer":
            continue
        holder, direction = (t.dst, "in") if t.src == "CASH" else (t.src, "out")
        local_day = datetime.fromtimestamp(t.ts // NS, UTC).astimezone(zone).date().isoformat()
        groups[(holder, direction, local_day)].append(t)
        if t.conductor and t.conductor != holder:
            groups[("conductor:" + t.conductor, direction, local_day)].append(t)
    out = []
    for (subject, direction, day_iso), txs in sorted(groups.items()):
        total = sum(t.cents for t in txs)
        accounts = {t.dst if direction == "in" else t.src for t in txs}
        if total <= CTR_THRESHOLD_MINOR:
            continue
        if subject.startswith("conductor:") and len(accounts) < 2:
            continue
        out.append(
            {
                "subject": subject,
                "direction": direction,
                "business_day": day_iso,
                "total_usd_minor": total,
                "transaction_ids": sorted(t.tx_id for t in txs),
            }
        )
    return out
