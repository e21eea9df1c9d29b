"""Small builders for settlement tests: participants, schemes, obligations, one command each."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from domain.settlement import errors as e
from domain.settlement import service
from domain.settlement.cycle import Cycle, ObligationSpec
from domain.settlement.participant import ParticipantSpec
from domain.settlement.scheme import SchemeSpec
from tests.unit.domain.settlement.fakes import FakeSettlement

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
S = 1_000_000_000
SCHEME = 1
HUB = {"USD": 9_000, "EUR": 9_001}
A, B, C, D = 1, 2, 3, 4
T = TypeVar("T")


def run(src: FakeSettlement, action: Callable[[], T]) -> T | str:
    """One command: commit on success, roll back and return the rejection's code on failure."""
    try:
        result = action()
    except e.SettlementRejection as exc:
        src.rollback()
        return exc.code
    src.commit()
    return result


def account_of(pid: int, currency: str) -> int:
    return pid * 100 + (1 if currency == "USD" else 2)


def participant(
    pid: int,
    *,
    caps: dict[str, int] | None = None,
    mins: dict[str, int] | None = None,
    maxs: dict[str, int] | None = None,
    currencies: Iterable[str] = ("USD", "EUR"),
) -> ParticipantSpec:
    return ParticipantSpec(
        pid,
        f"bank {pid}",
        {c: account_of(pid, c) for c in currencies},
        caps or {},
        mins or {},
        maxs or {},
    )


def world(
    *specs: ParticipantSpec,
    mode: str = "dns",
    currencies: Iterable[str] = ("USD",),
    times: tuple[int, ...] = (),
    scheme_id: int = SCHEME,
    now: int = T0,
) -> FakeSettlement:
    src = FakeSettlement()
    for spec in specs:
        service.register_participant(src, spec, now)
    src.commit()
    members = tuple(s.participant_id for s in specs)
    scheme = SchemeSpec(
        scheme_id, "test scheme", mode, {c: HUB[c] for c in currencies}, times, members
    )
    service.create_scheme(src, scheme, now)
    src.commit()
    return src


def ob(
    obligation_id: int,
    payer: int,
    payee: int,
    amount: int,
    currency: str = "USD",
    **kw: Any,
) -> ObligationSpec:
    return ObligationSpec(
        obligation_id, kw.pop("scheme_id", SCHEME), payer, payee, currency, amount, **kw
    )


def submit(src: FakeSettlement, spec: ObligationSpec, now: int = T0) -> str:
    outcome = run(src, lambda: service.submit_obligation(src, spec, now))
    return outcome if isinstance(outcome, str) else outcome.status


def submit_all(
    src: FakeSettlement, triples: Iterable[tuple[int, int, int]], first_id: int = 1, **kw: Any
) -> list[str]:
    return [
        submit(src, ob(first_id + k, payer, payee, amount, **kw))
        for k, (payer, payee, amount) in enumerate(triples)
    ]


def cut(src: FakeSettlement, seq: int | None = None, now: int = T0) -> Any:
    return run(src, lambda: service.cut_off(src, SCHEME, seq, now))


def open_cycle(src: FakeSettlement, scheme_id: int = SCHEME) -> Cycle:
    return src.cycle(scheme_id, src.scheme(scheme_id).open_seq)


BANXICO = [  # Banco de México note: A = Central, B = Comercial, C = Meridional
    (A, B, 25),
    (A, C, 7),
    (B, A, 17),
    (B, C, 9),
    (C, A, 11),
    (C, B, 14),
]
