"""``precision``: refuse over-precise quantities; fit the rest to the market's step and tick."""

from __future__ import annotations

from typing import Any, ClassVar

from ordergate.pipeline.errors import INVALID_PRECISION, ORDER_TOO_SMALL, Rejection
from ordergate.pipeline.money import ZERO, decimals, floor_to_step, plain, round_price
from ordergate.pipeline.signal import Signal
from ordergate.pipeline.stage import RouteContext


class PrecisionRounding:
    """More decimals than ``max_decimals`` -> "Invalid quantity precision"; otherwise the
    quantity is truncated to the step size and a limit price rounded to the tick size (towards
    the trader: buys down, sells up). A quantity that truncates to nothing is too small."""

    options_schema: ClassVar[dict[str, Any]] = {
        "max_decimals": {"type": "integer", "min": 0, "max": 18, "default": 8},
    }
    requires: ClassVar[tuple[str, ...]] = ("schema", "whitelist")

    def __init__(self, options: dict[str, Any], route: RouteContext) -> None:
        self.max_decimals: int = options["max_decimals"]

    def __call__(self, signal: Signal) -> Signal:
        order = signal.require_order()
        market = signal.require_market()
        if decimals(order.quantity) > self.max_decimals:
            raise Rejection(INVALID_PRECISION, code="too_many_decimals")
        quantity = floor_to_step(order.quantity, market.step_size)
        if quantity <= ZERO or quantity < market.min_qty:
            raise Rejection(ORDER_TOO_SMALL, code="below_min_quantity")
        if market.max_qty > ZERO and quantity > market.max_qty:
            most = f"{plain(market.max_qty)} {market.base}"
            raise Rejection(f"Order size too large: at most {most} per order", code="above_max_quantity")
        if quantity != order.quantity:
            signal = signal.note(
                f"quantity {plain(order.quantity)} truncated to {plain(quantity)} (step {plain(market.step_size)})"
            )
        price = order.price
        if price is not None and order.price is not None:
            price = round_price(price, market.tick_size, order.side)
            if price <= ZERO:
                tick = plain(market.tick_size)
                raise Rejection(f"Invalid price: below the tick size {tick}", code="price_below_tick")
            if price != order.price:
                signal = signal.note(
                    f"price {plain(order.price)} rounded to {plain(price)} (tick {plain(market.tick_size)})"
                )
        if quantity == order.quantity and price == order.price:
            return signal
        return signal.with_order(quantity=quantity, price=price)
