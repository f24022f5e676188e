"""One broker contract, the same scenarios for every adapter, asserted at the wire.

Adapters: paper (spot and USD-M futures), ccxt Binance spot and USD-M futures against the
loopback Binance of ``fake_binance.py``, and FlatTrade against the loopback NorenOMS of
``fake_noren.py``. Each scenario asserts the Placement the adapter returns and, where there is a
wire, the exact parameters of every order request the exchange received (signature and
timestamps aside) and how many there were. Paper has no wire: its book (``find_order``,
balances, positions) is asserted instead. A scenario that an adapter has no such concept for
is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from ordergate.brokers import build_broker
from ordergate.brokers.base import Broker
from ordergate.brokers.ccxt import CcxtBroker
from ordergate.brokers.flattrade import SessionExpired
from ordergate.brokers.paper import PaperBroker
from ordergate.pipeline.errors import OrderOutcomeUnknown, Rejection
from ordergate.pipeline.signal import Market, Order, Side
from tests.brokers.fake_binance import FakeBinance, Plan, Serving
from tests.brokers.fake_noren import FakeNoren, NorenPlan, ServingNoren
from tests.conftest import CONFIG_DIR

ADAPTERS = ["paper-spot", "paper-future", "ccxt-spot", "ccxt-future", "flattrade"]
NO_WIRE = "paper has no wire: nothing is sent, so nothing can be lost or looked up"
USER = "FT012345"
LOOKS = ("PlaceOrder", "OrderBook")


@dataclass
class Venue:
    """One adapter on its exchange, with what the contract needs to drive and check it."""

    name: str
    broker: Broker
    market: Market
    quantity: Decimal  # a valid order size on this market
    resting_price: Decimal  # a buy limit below the last price: it rests
    last: Decimal
    expected: Callable[[Order], dict[str, Any]]  # the order parameters the adapter must send
    sent: Callable[[], list[dict[str, Any]]] = lambda: []  # the order requests that arrived
    trail: Callable[[], list[str]] = lambda: []  # "order" and "look-up" requests, in arrival order
    plan: Callable[..., None] | None = None  # script the exchange's next order: None = no wire
    fail_lookups: Callable[[], None] | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def wire(self) -> bool:
        return self.plan is not None

    def order(self, cid: str, *, side: Side = "buy", price: Decimal | None = None, reduce_only: bool = False) -> Order:
        return Order(
            symbol=self.market.symbol,
            side=side,
            type="MARKET" if price is None else "LIMIT",
            quantity=self.quantity,
            price=price,
            reduce_only=reduce_only,
            client_order_id=cid,
        )


def binance_body(market_type: str) -> Callable[[Order], dict[str, Any]]:
    """POST /api/v3/order (spot, FULL answers) or /fapi/v1/order (futures, RESULT answers)."""

    def expected(order: Order) -> dict[str, Any]:
        body = {
            "symbol": "BTCUSDT",
            "side": order.side.upper(),
            "type": order.type,
            "quantity": format(order.quantity, "f"),
            "newClientOrderId": order.client_order_id,
            "newOrderRespType": "RESULT" if market_type == "future" else "FULL",
        }
        if order.price is not None:
            body.update(price=format(order.price, "f"), timeInForce="GTC")
        if order.reduce_only and market_type == "future":
            body["reduceOnly"] = "true"
        return body

    return expected


def noren_body(order: Order) -> dict[str, Any]:
    """PlaceOrder's jData: a MARKET order is sent as a LIMIT 0.5 % through the last price (1500)."""
    protected = Decimal("1507.5") if order.side == "buy" else Decimal("1492.5")
    price = order.price if order.price is not None else protected
    return {
        "ordersource": "API",
        "uid": USER,
        "actid": USER,
        "trantype": "B" if order.side == "buy" else "S",
        "prd": "C",
        "exch": "NSE",
        "tsym": "CIPLA-EQ",
        "qty": format(order.quantity, "f"),
        "dscqty": "0",
        "prctyp": "LMT",
        "prc": format(price, "f"),
        "ret": "DAY",
        "remarks": order.client_order_id,
    }


def _paper(name: str, stack: ExitStack) -> Venue:
    if name == "paper-spot":
        broker = build_broker(
            "paper_spot",
            {
                "adapter": "paper",
                "market_type": "spot",
                "markets": "markets/binance-spot.json",
                "balances": {"USDT": Decimal(10000), "BTC": Decimal("0.1")},
                "prices": {"BTCUSDT": Decimal(43500)},
            },
            config_dir=CONFIG_DIR,
            file="contract",
        )
        quantity = Decimal("0.002")
    else:
        # USD-M BTCUSDT's published filters (tick 0.10, step 0.001, minimum notional 100)
        futures = Market(
            symbol="BTCUSDT",
            base="BTC",
            quote="USDT",
            type="future",
            tick_size=Decimal("0.1"),
            step_size=Decimal("0.001"),
            min_qty=Decimal("0.001"),
            max_qty=Decimal(1000),
            min_notional=Decimal(100),
            broker_symbol="BTCUSDT",
        )
        broker = PaperBroker(
            "paper_future",
            markets={"BTCUSDT": futures},
            prices={"BTCUSDT": Decimal(43500)},
            balances={"USDT": Decimal(10000)},
            market_type="future",
        )
        quantity = Decimal("0.003")
    market = broker.market("BTCUSDT")
    assert market is not None
    expected = binance_body(broker.market_type)
    return Venue(name, broker, market, quantity, Decimal("40000"), Decimal("43500"), expected)


def _ccxt(name: str, stack: ExitStack) -> Venue:
    market_type = name.split("-")[1]
    exchange = stack.enter_context(Serving(FakeBinance()))
    broker = build_broker(
        "binance",
        {
            "adapter": "ccxt",
            "exchange": "binance",
            "market_type": market_type,
            "testnet": True,
            "api_url": exchange.url,
            "api_key": "test-key-not-a-secret",
            "api_secret": "test-secret-not-a-secret",
            "lookup_delay_s": 0,
            "timeout_ms": 3000,
        },
        config_dir=CONFIG_DIR,
        file="contract",
    )
    assert isinstance(broker, CcxtBroker)
    stack.callback(broker.close)
    market = broker.market("BTCUSDT")
    assert market is not None

    def fail_lookups() -> None:
        exchange.fail_until_healed("lookup", "dropped")

    return Venue(
        name,
        broker,
        market,
        Decimal("0.002") if market_type == "spot" else Decimal("0.003"),
        Decimal("40000"),
        Decimal("43500"),
        binance_body(market_type),
        sent=exchange.order_requests,
        trail=lambda: ["order" if r.is_order else "look-up" for r in exchange.requests if r.is_order or r.is_lookup],
        plan=lambda **kw: exchange.plan(Plan(**kw)),
        fail_lookups=fail_lookups,
    )


def _flattrade(name: str, stack: ExitStack) -> Venue:
    oms = stack.enter_context(ServingNoren(FakeNoren()))
    broker = build_broker(
        "flattrade",
        {
            "adapter": "flattrade",
            "api_url": oms.url,
            "user_id": USER,
            "token": "test-session-token-not-a-secret",
            "lookup_delay_s": 0,
            "poll_interval_s": 0,
            "status_wait_s": 0,  # one status read: what the OMS says right after accepting
        },
        config_dir=CONFIG_DIR,
        file="contract",
    )
    market = broker.market("CIPLA")
    assert market is not None

    def fail_lookups() -> None:
        oms.failing_lookups = True

    def plan(*, status: str | None = None, filled: Decimal | None = None, **kw: Any) -> None:
        # ordergate's words to NorenOMS's: a partial fill is an OPEN order with filled shares
        noren = {"FILLED": "COMPLETE", "PARTIALLY_FILLED": "OPEN"}.get(status, status) if status else None
        oms.plan(NorenPlan(status=noren, filled=None if filled is None else int(filled), **kw))

    return Venue(
        name,
        broker,
        market,
        Decimal(10),
        Decimal(1490),
        Decimal(1500),
        noren_body,
        sent=oms.order_requests,
        # NorenOMS has no look-up by client id: the order book is read and searched by remarks
        trail=lambda: [{"PlaceOrder": "order", "OrderBook": "look-up"}[c.route] for c in oms.calls if c.route in LOOKS],
        plan=plan,
        fail_lookups=fail_lookups,
    )


@pytest.fixture(params=ADAPTERS)
def venue(request: pytest.FixtureRequest) -> Iterator[Venue]:
    with ExitStack() as stack:
        name: str = request.param
        build = _paper if name.startswith("paper") else _ccxt if name.startswith("ccxt") else _flattrade
        yield build(name, stack)


def cid(scenario: str) -> str:
    return f"og-contract-{scenario}"


def assert_booked(venue: Venue, placement: Any) -> None:
    """Paper: the placement is what the book now holds for its client order id."""
    assert venue.broker.find_order(placement.client_order_id, venue.market.symbol) == placement


# -- the scenarios ------------------------------------------------------------------------------


def test_a_market_order_fills(venue: Venue) -> None:
    order = venue.order(cid("market"))
    placement = venue.broker.place_order(order, venue.market)
    assert (placement.status, placement.client_order_id, placement.side) == ("FILLED", order.client_order_id, "buy")
    assert (placement.quantity, placement.filled) == (order.quantity, order.quantity)
    assert placement.average_price == venue.last
    if venue.wire:
        assert venue.sent() == [venue.expected(order)]
    else:
        assert_booked(venue, placement)


def test_a_limit_order_below_the_market_rests(venue: Venue) -> None:
    order = venue.order(cid("limit"), price=venue.resting_price)
    placement = venue.broker.place_order(order, venue.market)
    assert (placement.status, placement.type, placement.filled) == ("NEW", "LIMIT", Decimal(0))
    assert placement.price == venue.resting_price
    assert placement.average_price is None
    if venue.wire:
        assert venue.sent() == [venue.expected(order)]
    else:
        assert_booked(venue, placement)


def test_a_reduce_only_order_says_so(venue: Venue) -> None:
    if venue.broker.market_type == "equity":
        pytest.skip("NorenOMS cash equities have no reduce-only orders: a sell needs the shares")
    if venue.broker.market_type == "spot":
        pytest.skip("spot has no positions to reduce: Binance spot has no reduceOnly parameter")
    opening = venue.order(cid("open"))
    venue.broker.place_order(opening, venue.market)
    closing = venue.order(cid("reduce"), side="sell", reduce_only=True)
    placement = venue.broker.place_order(closing, venue.market)
    assert (placement.status, placement.side, placement.filled) == ("FILLED", "sell", closing.quantity)
    if venue.wire:
        assert venue.sent() == [venue.expected(opening), venue.expected(closing)]
        assert venue.sent()[1]["reduceOnly"] == "true"
    else:
        assert isinstance(venue.broker, PaperBroker)
        assert venue.broker.position("BTCUSDT") == 0
        # and one that would open a position is refused, as Binance refuses it (-2022)
        with pytest.raises(Rejection, match="ReduceOnly Order is rejected"):
            venue.broker.place_order(venue.order(cid("reduce-again"), side="sell", reduce_only=True), venue.market)


def test_a_lost_answer_is_found_by_look_up_and_sent_once(venue: Venue) -> None:
    if venue.plan is None:
        pytest.skip(NO_WIRE)
    venue.plan(answer=False)  # executed, but the answer never arrives
    order = venue.order(cid("lost"))
    placement = venue.broker.place_order(order, venue.market)
    assert (placement.status, placement.client_order_id, placement.filled) == (
        "FILLED",
        order.client_order_id,
        order.quantity,
    )
    assert venue.sent() == [venue.expected(order)]  # one request: one order
    assert venue.trail() == ["order", "look-up"]


def test_a_lost_order_absent_twice_is_sent_once_more_unchanged(venue: Venue) -> None:
    if venue.plan is None:
        pytest.skip(NO_WIRE)
    venue.plan(execute=False, answer=False)  # it never reached the matching engine
    order = venue.order(cid("absent"))
    placement = venue.broker.place_order(order, venue.market)
    assert (placement.status, placement.client_order_id) == ("FILLED", order.client_order_id)
    assert venue.sent() == [venue.expected(order), venue.expected(order)]  # the same order, same id
    assert venue.trail() == ["order", "look-up", "look-up", "order"]  # absent twice before the re-send


def test_a_failing_look_up_is_unknown_and_never_re_sent(venue: Venue) -> None:
    if venue.plan is None or venue.fail_lookups is None:
        pytest.skip(NO_WIRE)
    venue.plan(execute=False, answer=False)
    venue.fail_lookups()  # the exchange cannot say whether it has the order
    order = venue.order(cid("unknown"))
    with pytest.raises(OrderOutcomeUnknown):
        venue.broker.place_order(order, venue.market)
    assert venue.sent() == [venue.expected(order)]  # not knowing is not "absent": no second order
    assert venue.trail()[0] == "order"
    assert set(venue.trail()[1:]) == {"look-up"}  # reads may be retried; the placement is not


def test_an_expired_order_is_answered_expired(venue: Venue) -> None:
    if venue.plan is None:
        pytest.skip("paper fills or rests every order it accepts: none expires")
    if venue.broker.market_type == "equity":
        pytest.skip("NorenOMS has no EXPIRED status (OPEN, COMPLETE, CANCELED, REJECTED, TRIGGER_PENDING)")
    venue.plan(status="EXPIRED")  # e.g. a MARKET order that found no liquidity
    order = venue.order(cid("expired"))
    placement = venue.broker.place_order(order, venue.market)
    assert (placement.status, placement.filled, placement.average_price) == ("EXPIRED", Decimal(0), None)
    assert venue.sent() == [venue.expected(order)]


def test_a_canceled_order_is_answered_canceled(venue: Venue) -> None:
    if venue.plan is None:
        pytest.skip("paper has no cancel: it fills or rests every order it accepts")
    venue.plan(status="CANCELED")
    order = venue.order(cid("canceled"), price=venue.resting_price)
    placement = venue.broker.place_order(order, venue.market)
    assert (placement.status, placement.filled) == ("CANCELED", Decimal(0))
    assert venue.sent() == [venue.expected(order)]


def test_a_partial_fill_reports_what_filled(venue: Venue) -> None:
    if venue.plan is None:
        pytest.skip("paper fills a marketable order whole")
    half = venue.quantity / 2 if venue.broker.market_type != "future" else Decimal("0.001")
    venue.plan(status="PARTIALLY_FILLED", filled=half)
    order = venue.order(cid("partial"), price=venue.last)
    placement = venue.broker.place_order(order, venue.market)
    assert (placement.status, placement.filled, placement.quantity) == ("PARTIALLY_FILLED", half, order.quantity)
    assert placement.average_price == venue.last
    assert venue.sent() == [venue.expected(order)]


def test_a_session_that_expires_mid_flight_still_answers_the_order(venue: Venue) -> None:
    if venue.broker.market_type != "equity":
        pytest.skip("API keys and paper accounts have no daily session to expire")
    assert venue.plan is not None
    venue.plan(expire_session=True)  # accepted, then the 05:00 IST expiry before the status read
    order = venue.order(cid("late-expiry"))
    placement = venue.broker.place_order(order, venue.market)
    assert (placement.status, placement.client_order_id) == ("NEW", order.client_order_id)
    assert placement.order_id  # the order exists: never answered as a failure
    assert venue.sent() == [venue.expected(order)]
    with pytest.raises(SessionExpired):  # and the next order asks for a login, sending nothing
        venue.broker.place_order(venue.order(cid("after-expiry")), venue.market)
    assert len(venue.sent()) == 1


def test_a_session_that_expires_before_the_look_up_leaves_the_outcome_unknown(venue: Venue) -> None:
    if venue.broker.market_type != "equity":
        pytest.skip("API keys and paper accounts have no daily session to expire")
    assert venue.plan is not None
    venue.plan(answer=False, expire_session=True)  # executed, answer lost, then the 05:00 IST expiry
    order = venue.order(cid("expired-look-up"))
    with pytest.raises(OrderOutcomeUnknown):
        venue.broker.place_order(order, venue.market)
    assert venue.sent() == [venue.expected(order)]
