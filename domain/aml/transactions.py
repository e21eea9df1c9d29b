"""A monitored transaction from outside the ledger: validated once, recorded once.

Definition
    One ingested record (card, ACH, instant, wire or cash) with the fields ``id``,
    ``timestamp`` (RFC 3339, the business time), ``from_account``, ``to_account``, ``amount``
    (decimal string in major units), ``currency``, ``channel``, ``kind``, ``from_country``,
    ``to_country`` and, for cash, ``conducted_by`` and ``branch``. Unknown extra fields are
    kept (``extra``; a float in them is kept as its decimal string, as payloads hold no
    floats). Stream: ``aml-tx:<id>``.

Guarantees
    * A transaction id is recorded at most once; re-sending the same record answers
      ``exists``, sending another record under the same id names the first differing field
      (``exists_with_different_<field>``, in the field order below).
    * Every recorded currency had a USD rate when it was recorded (rates are never removed),
      so every threshold in USD applies to it.

Rejections (in precedence order, ``TRANSACTION_ORDER``)
    ``invalid_transaction_id``, ``invalid_timestamp``, ``invalid_account_reference``,
    ``accounts_must_be_different``, ``invalid_channel``, ``invalid_kind``,
    ``cash_side_mismatch``, ``invalid_country``, ``unknown_currency``, ``invalid_amount``,
    ``exists_with_different_<field>`` (timestamp, from_account, to_account, amount, currency,
    channel, kind, from_country, to_country, conducted_by, branch, extra), ``exists``,
    ``currency_without_rate``, ``timestamp_in_future``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.aggregate import Aggregate
from domain.aml import errors as e
from domain.aml.events import TransactionRecorded
from domain.aml.model import (
    CASH,
    CHANNELS,
    KINDS,
    NS_PER_S,
    Txn,
    check_country,
    check_reference,
    float_free,
    parse_rfc3339_ns,
)
from domain.aml.rates import RateTable
from domain.invariant import invariant
from domain.money import MoneyError, is_currency, parse_major

TRANSACTION_ORDER: tuple[str, ...] = (
    "invalid_transaction_id",
    "invalid_timestamp",
    "invalid_account_reference",
    "accounts_must_be_different",
    "invalid_channel",
    "invalid_kind",
    "cash_side_mismatch",
    "invalid_country",
    "unknown_currency",
    "invalid_amount",
    "exists_with_different_<field>",
    "exists",
    "currency_without_rate",
    "timestamp_in_future",
)
KNOWN_FIELDS = (
    "id",
    "timestamp",
    "from_account",
    "to_account",
    "amount",
    "currency",
    "channel",
    "kind",
    "from_country",
    "to_country",
    "conducted_by",
    "branch",
)
# The order in which a re-used id's fields are compared: the first difference is named.
COMPARED_FIELDS = (
    ("ts_ns", "timestamp"),
    ("from_account", "from_account"),
    ("to_account", "to_account"),
    ("amount_minor", "amount"),
    ("currency", "currency"),
    ("channel", "channel"),
    ("kind", "kind"),
    ("from_country", "from_country"),
    ("to_country", "to_country"),
    ("conducted_by", "conducted_by"),
    ("branch", "branch"),
    ("extra", "extra"),
)
LEDGER_PREFIX = "ledger:"  # reserved: ledger transfers are monitored as ``ledger:<id>``
DEFAULT_MAX_FUTURE_S = 86_400
_TX_ID = re.compile(r"[!-~]{1,128}")


def stream_id(tx_id: str) -> str:
    return f"aml-tx:{tx_id}"


@dataclass(frozen=True, slots=True)
class TransactionSpec:
    tx_id: str
    ts_ns: int
    from_account: str
    to_account: str
    amount_minor: int
    currency: str
    channel: str
    kind: str
    from_country: str = ""
    to_country: str = ""
    conducted_by: str = ""
    branch: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _text(record: Mapping[str, Any], name: str, default: str | None = None) -> Any:
    value = record.get(name, default)
    return "" if value is None else value


def parse_record(record: Mapping[str, Any]) -> TransactionSpec:
    """Validate one ingest record (shape and every rule that needs no state).

    Raises the first failing rule of ``TRANSACTION_ORDER`` up to ``invalid_amount``.
    """
    tx_id = _tx_id(record.get("id"))
    ids = {"tx_id": tx_id}
    try:
        ts_ns = parse_rfc3339_ns(record.get("timestamp"), "timestamp")  # type: ignore[arg-type]
        src = check_reference(record.get("from_account"), "from_account")  # type: ignore[arg-type]
        dst = check_reference(record.get("to_account"), "to_account")  # type: ignore[arg-type]
        if src == dst:
            raise e.AccountsMustBeDifferent(f"from_account and to_account are both {src}")
        channel, kind = _channel_and_kind(record, src, dst)
        from_country = check_country(_text(record, "from_country"), "from_country")
        to_country = check_country(_text(record, "to_country"), "to_country")
        currency, amount_minor = _money(record)
        conducted_by = _optional_reference(record, "conducted_by")
        branch = _optional_reference(record, "branch")
    except e.AmlRejection as exc:
        exc.ids.update(ids)
        raise
    extra = {k: float_free(v) for k, v in record.items() if k not in KNOWN_FIELDS}
    return TransactionSpec(
        tx_id,
        ts_ns,
        src,
        dst,
        amount_minor,
        currency,
        channel,
        kind,
        from_country,
        to_country,
        conducted_by,
        branch,
        dict(sorted(extra.items())),
    )


def _tx_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        value = str(value)
    if not isinstance(value, str) or _TX_ID.fullmatch(value) is None:
        raise e.InvalidTransactionId(
            f"id {value!r} is not 1 to 128 printable characters without spaces", tx_id=value
        )
    if value.startswith(LEDGER_PREFIX):
        raise e.InvalidTransactionId(
            f"ids starting with {LEDGER_PREFIX!r} are reserved for ledger transfers", tx_id=value
        )
    return value


def _channel_and_kind(record: Mapping[str, Any], src: str, dst: str) -> tuple[str, str]:
    channel = record.get("channel")
    if channel not in CHANNELS:
        raise e.InvalidChannel(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
    kind = record.get("kind", "transfer")
    if kind not in KINDS:
        raise e.InvalidKind(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    expected = {
        "cash_deposit": src == CASH and dst != CASH,
        "cash_withdrawal": dst == CASH and src != CASH,
        "transfer": CASH not in (src, dst),
    }[kind]
    if not expected or (kind != "transfer" and channel != "cash"):
        raise e.CashSideMismatch(
            "a cash_deposit goes from CASH over the cash channel, a cash_withdrawal to CASH, "
            "and a transfer touches no CASH account"
        )
    return channel, kind


def _money(record: Mapping[str, Any]) -> tuple[str, int]:
    currency = record.get("currency")
    if not isinstance(currency, str) or not is_currency(currency):
        raise e.UnknownCurrency(f"{currency!r} is not an active ISO 4217 currency code")
    amount = record.get("amount")
    try:
        amount_minor = parse_major(amount, currency)  # type: ignore[arg-type]
    except MoneyError as exc:
        raise e.InvalidAmount(str(exc)) from None
    if amount_minor <= 0:
        raise e.InvalidAmount(f"amount {amount} must be positive")
    return currency, amount_minor


def _optional_reference(record: Mapping[str, Any], name: str) -> str:
    value = _text(record, name)
    return value if value == "" else check_reference(value, name)


class MonitoredTransaction(Aggregate):
    """The record of one ingested transaction (stream ``aml-tx:<id>``)."""

    __slots__ = ("spec",)

    def __init__(self, tx_id: str) -> None:
        super().__init__(stream_id(tx_id))
        self.spec: TransactionSpec | None = None

    @classmethod
    def record(
        cls,
        spec: TransactionSpec,
        existing: MonitoredTransaction | None,
        rates: RateTable,
        now_ns: int,
        max_future_s: int = DEFAULT_MAX_FUTURE_S,
    ) -> MonitoredTransaction:
        """Record ``spec`` (already shaped by :func:`parse_record`) or name why not."""
        ids = {"tx_id": spec.tx_id}
        if existing is not None and existing.spec is not None:
            for attr, name in COMPARED_FIELDS:
                if getattr(existing.spec, attr) != getattr(spec, attr):
                    raise e.exists_with_different(
                        name, f"transaction {spec.tx_id} exists with another {name}", **ids
                    )
            raise e.Exists(f"transaction {spec.tx_id} exists", **ids)
        if not rates.has(spec.currency):
            raise e.CurrencyWithoutRate(
                f"no USD rate is loaded for {spec.currency}; load rates first",
                currency=spec.currency,
                **ids,
            )
        if spec.ts_ns > now_ns + max_future_s * NS_PER_S:
            raise e.TimestampInFuture(
                f"timestamp is more than {max_future_s} s after the server clock", **ids
            )
        tx = cls(spec.tx_id)
        tx._trigger(
            TransactionRecorded(
                spec.tx_id,
                spec.ts_ns,
                spec.from_account,
                spec.to_account,
                spec.amount_minor,
                spec.currency,
                spec.channel,
                spec.kind,
                spec.from_country,
                spec.to_country,
                spec.conducted_by,
                spec.branch,
                spec.extra,
                now_ns,
            )
        )
        return tx

    def apply(self, event: object) -> None:
        if isinstance(event, TransactionRecorded):
            self.spec = spec_of(event)
        else:  # pragma: no cover - a programming error
            invariant(False, f"MonitoredTransaction cannot apply {type(event).__name__}")


def txn_of(spec: TransactionSpec, rates: RateTable, position: int) -> Txn:
    """The detectors' view of a recorded transaction, converted with ``rates``."""
    return Txn(
        spec.ts_ns,
        spec.tx_id,
        spec.from_account,
        spec.to_account,
        rates.to_usd_minor(spec.amount_minor, spec.currency),
        spec.amount_minor,
        spec.currency,
        spec.channel,
        spec.kind,
        spec.from_country,
        spec.to_country,
        spec.conducted_by,
        spec.branch,
        position,
    )


def spec_of(event: TransactionRecorded) -> TransactionSpec:
    return TransactionSpec(
        event.tx_id,
        event.ts_ns,
        event.from_account,
        event.to_account,
        event.amount_minor,
        event.currency,
        event.channel,
        event.kind,
        event.from_country,
        event.to_country,
        event.conducted_by,
        event.branch,
        dict(event.extra),
    )
