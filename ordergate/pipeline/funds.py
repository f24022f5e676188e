"""What an order spends: the one rule the ``balance`` stage reserves by, the paper account
charges by and the ccxt adapter's cached balance is updated by after a fill."""

from __future__ import annotations

from decimal import Decimal

from ordergate.pipeline.money import ZERO
from ordergate.pipeline.signal import Market, Side

INTRADAY = ("MIS", "NRML")  # equity products whose sell may open a short


def required_funds(
    market: Market,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    leverage: Decimal,
    *,
    reduce_only: bool = False,
    product: str | None = None,
) -> tuple[str, Decimal]:
    """Which asset ``quantity`` of ``market`` bought or sold at ``price`` spends, and how much of it.

    Futures: margin in the quote asset (notional / leverage); reduce-only orders spend none.
    Spot and cash equities: a buy spends the quote asset, a sell spends the base asset. An
    intraday equity order (``product`` MIS, NRML) is counted at its full value either way: the
    broker's intraday margin is smaller, so this errs on the safe side, as the futures margin does.
    """
    if market.type == "future":
        return market.quote, ZERO if reduce_only else quantity * price / leverage
    if side == "buy" or (market.type == "equity" and product in INTRADAY):
        # an intraday (MIS) or NRML sell may open a short: it is paid for with funds, not shares
        return market.quote, quantity * price
    return market.base, quantity
