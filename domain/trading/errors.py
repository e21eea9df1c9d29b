"""Named rejections of the trading context, one class per rule. ``code`` is the stable name.

Every rejection carries the ids involved. The order in which rules are checked is documented
in :mod:`domain.trading.book` and exported there as ``PLACE_ORDER_ORDER`` and friends.
"""

from __future__ import annotations

from typing import ClassVar

from domain.rejection import Rejection, rule


class TradingRejection(Rejection):
    """Root of every trading rule violation."""

    code: ClassVar[str] = "trading_rejection"


def _rule(name: str, code: str, doc: str) -> type[TradingRejection]:
    return rule(TradingRejection, name, code, doc)


# ------------------------------------------------------------------ identity and shape
IdMustNotBeZero = _rule(
    "IdMustNotBeZero", "id_must_not_be_zero", "Order, account and instrument ids are 1 or more."
)
IdMustNotBeIntMax = _rule(
    "IdMustNotBeIntMax",
    "id_must_not_be_int_max",
    "Ids are unsigned 128-bit; 2^128-1 is reserved (as the ledger's).",
)
InvalidSide = _rule("InvalidSide", "invalid_side", "The side is 'buy' or 'sell'.")
InvalidOrderType = _rule("InvalidOrderType", "invalid_order_type", "'limit' or 'market'.")
InvalidTimeInForce = _rule(
    "InvalidTimeInForce", "invalid_time_in_force", "'gtc', 'ioc', 'fok' or 'gtd'."
)
InvalidSelfTradePrevention = _rule(
    "InvalidSelfTradePrevention",
    "invalid_self_trade_prevention",
    "'none', 'cancel_newest', 'cancel_oldest', 'cancel_both' or 'decrement'.",
)
MarketOrderCannotRest = _rule(
    "MarketOrderCannotRest",
    "market_order_cannot_rest",
    "A market order is 'ioc' or 'fok'; it never rests, so 'gtc' and 'gtd' are refused.",
)
PriceRequired = _rule("PriceRequired", "price_required", "A limit order needs a price.")
PriceNotAllowed = _rule(
    "PriceNotAllowed", "price_not_allowed", "A market order has no price (it takes the book's)."
)
QuantityRequired = _rule(
    "QuantityRequired",
    "quantity_required",
    "A quantity is needed, except for an 'ioc' buy that gives a quote budget instead.",
)
QuoteQuantityNotAllowed = _rule(
    "QuoteQuantityNotAllowed",
    "quote_quantity_not_allowed",
    "A quote budget is for orders that never rest: an 'ioc' buy (instead of a quantity) or "
    "any 'fok' order (in addition to its quantity).",
)
PostOnlyNotAllowed = _rule(
    "PostOnlyNotAllowed",
    "post_only_not_allowed",
    "Post-only is for limit orders that rest ('gtc', 'gtd'); re-pricing needs post-only.",
)
ExpireAtRequired = _rule(
    "ExpireAtRequired", "expire_at_required", "A 'gtd' order needs its expiry time."
)
ExpireAtNotAllowed = _rule(
    "ExpireAtNotAllowed", "expire_at_not_allowed", "Only a 'gtd' order has an expiry time."
)
# ------------------------------------------------------------------ values
InvalidPrice = _rule("InvalidPrice", "invalid_price", "A price is a plain decimal string.")
PriceMustBePositive = _rule("PriceMustBePositive", "price_must_be_positive", "Prices are > 0.")
PriceNotOnTick = _rule(
    "PriceNotOnTick", "price_not_on_tick", "A price is a whole number of the instrument's ticks."
)
InvalidQuantity = _rule(
    "InvalidQuantity", "invalid_quantity", "A quantity is a plain decimal string."
)
QuantityMustBePositive = _rule(
    "QuantityMustBePositive", "quantity_must_be_positive", "Quantities are > 0."
)
QuantityNotOnLot = _rule(
    "QuantityNotOnLot",
    "quantity_not_on_lot",
    "A quantity is a whole number of the instrument's lots.",
)
QuantityBelowMinimum = _rule(
    "QuantityBelowMinimum",
    "quantity_below_minimum",
    "The quantity is below the instrument's minimum.",
)
InvalidQuoteQuantity = _rule(
    "InvalidQuoteQuantity", "invalid_quote_quantity", "A quote budget is a plain decimal string."
)
QuoteQuantityMustBePositive = _rule(
    "QuoteQuantityMustBePositive",
    "quote_quantity_must_be_positive",
    "A quote budget is at least one tick times one lot.",
)
ExpireAtInPast = _rule(
    "ExpireAtInPast", "expire_at_in_past", "A 'gtd' order's expiry is after the time it arrives."
)
# ------------------------------------------------------------------ state
InstrumentClosed = _rule(
    "InstrumentClosed", "instrument_closed", "The instrument is closed for good."
)
InstrumentHalted = _rule(
    "InstrumentHalted",
    "instrument_halted",
    "Trading is halted: no new orders or amendments; cancels and reductions are allowed.",
)
InstrumentNotHalted = _rule(
    "InstrumentNotHalted", "instrument_not_halted", "Only a halted instrument can resume."
)
DuplicateOrderId = _rule(
    "DuplicateOrderId", "duplicate_order_id", "An order with this id is live on the book."
)
PriceOutOfBand = _rule(
    "PriceOutOfBand",
    "price_out_of_band",
    "The price is further from the reference price than the instrument's band allows.",
)
PostOnlyWouldTake = _rule(
    "PostOnlyWouldTake",
    "post_only_would_take",
    "A post-only order would have traded on arrival (and was not allowed to re-price).",
)
OrderNotFound = _rule(
    "OrderNotFound",
    "order_not_found",
    "No live order with this id for this account (other accounts' orders are not revealed).",
)
ReduceNeedsOneQuantity = _rule(
    "ReduceNeedsOneQuantity",
    "reduce_needs_one_quantity",
    "A reduction gives exactly one of 'reduce_by' or 'reduce_to'.",
)
ReduceMustDecrease = _rule(
    "ReduceMustDecrease",
    "reduce_must_decrease",
    "'reduce_to' must be below the open quantity.",
)
AmendRequiresChange = _rule(
    "AmendRequiresChange",
    "amend_requires_change",
    "An amendment changes the price or the quantity.",
)
InsufficientFunds = _rule(
    "InsufficientFunds",
    "insufficient_funds",
    "The account's funds cannot cover the order's hold (settlement mode 'ledger').",
)
# ------------------------------------------------------------------ instruments
InvalidSymbol = _rule("InvalidSymbol", "invalid_symbol", "1-32 characters: A-Z, 0-9 and . _ / - .")
InvalidAsset = _rule("InvalidAsset", "invalid_asset", "An asset code is 1-12 of A-Z and 0-9.")
AssetsMustBeDifferent = _rule(
    "AssetsMustBeDifferent", "assets_must_be_different", "Base and quote assets differ."
)
InvalidTickSize = _rule(
    "InvalidTickSize", "invalid_tick_size", "The tick size is a positive decimal string."
)
InvalidLotSize = _rule(
    "InvalidLotSize", "invalid_lot_size", "The lot size is a positive decimal string."
)
InvalidMinQuantity = _rule(
    "InvalidMinQuantity",
    "invalid_min_quantity",
    "The minimum quantity is a positive whole number of lots.",
)
InvalidPriceBand = _rule(
    "InvalidPriceBand", "invalid_price_band", "A price band is 1..10000 basis points, or 0 (none)."
)
InvalidReferencePrice = _rule(
    "InvalidReferencePrice",
    "invalid_reference_price",
    "The reference price is a positive whole number of ticks.",
)
InvalidFee = _rule("InvalidFee", "invalid_fee", "Fees are 0..10000 basis points.")
InvalidSettlementMode = _rule(
    "InvalidSettlementMode", "invalid_settlement_mode", "'none' or 'ledger'."
)
InvalidStatus = _rule(
    "InvalidStatus", "invalid_status", "An instrument is listed 'open' or 'halted'."
)
InvalidSettlementAccounts = _rule(
    "InvalidSettlementAccounts",
    "invalid_settlement_accounts",
    "Settlement 'ledger' names its ledger and the venue's hold and fee accounts; 'none' none.",
)
AssetNotACurrency = _rule(
    "AssetNotACurrency",
    "asset_not_a_currency",
    "Settlement into the ledger needs both assets to be ledger currencies (ISO 4217).",
)
TickValueNotIntegral = _rule(
    "TickValueNotIntegral",
    "tick_value_not_integral",
    "Settlement into the ledger needs tick size x lot size to be a whole number of the quote "
    "currency's minor units.",
)
LotNotIntegral = _rule(
    "LotNotIntegral",
    "lot_not_integral",
    "Settlement into the ledger needs the lot size to be a whole number of the base "
    "currency's minor units.",
)
InstrumentExists = _rule(
    "InstrumentExists", "instrument_exists", "An instrument with this id is already listed."
)
InstrumentNotFound = _rule(
    "InstrumentNotFound", "instrument_not_found", "No instrument with this id."
)
# ------------------------------------------------------------------ settlement into the ledger
LedgerAccountNotFound = _rule(
    "LedgerAccountNotFound",
    "ledger_account_not_found",
    "A ledger account named for settlement does not exist.",
)
LedgerAccountMismatch = _rule(
    "LedgerAccountMismatch",
    "ledger_account_mismatch",
    "A ledger account named for settlement is on another ledger or in another currency.",
)
AccountNotLinked = _rule(
    "AccountNotLinked",
    "account_not_linked",
    "The trading account has no ledger account for an asset of the instrument.",
)
AssetAlreadyLinked = _rule(
    "AssetAlreadyLinked",
    "asset_already_linked",
    "The trading account's asset is already linked to another ledger account.",
)
AccountLinked = _rule(
    "AccountLinked",
    "exists",
    "Not an error: the asset is already linked to this very ledger account.",
)


ALL_RULES: tuple[type[TradingRejection], ...] = tuple(
    v
    for v in globals().values()
    if isinstance(v, type) and issubclass(v, TradingRejection) and v is not TradingRejection
)
