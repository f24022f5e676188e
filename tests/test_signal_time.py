"""A signal's ``time`` ahead of the clock is refused (422), an absurd one is a 400: over real HTTP."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ordergate.app import create_app
from ordergate.brokers.paper import PaperBroker
from ordergate.config import Settings, load_settings
from ordergate.replay import Replay, read_items
from tests.conftest import CONFIG_DIR, serving

BTC = '"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": 0.001, "type": "MARKET"'

# The raw JSON of "time" as a function of the clock read when the request is sent.
Raw = Callable[[float], str]


def iso_in(seconds: float) -> Raw:
    return lambda now: '"' + datetime.fromtimestamp(now + seconds, UTC).isoformat(timespec="milliseconds") + '"'


def ms_in(seconds: float) -> Raw:
    return lambda now: str(int((now + seconds) * 1000))


def literal(text: str) -> Raw:
    return lambda now: text


def _serve_and_post(settings: Settings, raw_time: Raw) -> tuple[int, dict[str, object], int]:
    """POST one BTC signal with ``time`` to a real waitress server; (status, answer, orders placed)."""
    app = create_app(settings)
    try:
        with serving(app) as server:
            status, answer = server.post("{" + BTC + ', "time": ' + raw_time(time.time()) + "}")
        broker = app.service.brokers["paper_binance"]
        assert isinstance(broker, PaperBroker)
        return status, answer, len(broker.placements())
    finally:
        app.journal.close()


@pytest.fixture
def aged(settings: Settings) -> Settings:
    settings.data["routes"]["BINANCE"]["max_age_s"] = 60
    return settings


@pytest.mark.parametrize(
    "raw_time",
    [iso_in(3600), ms_in(3600), iso_in(60)],
    ids=["iso-an-hour-ahead", "epoch-ms-an-hour-ahead", "a-minute-ahead"],
)
def test_a_time_ahead_of_the_clock_is_refused_422_and_nothing_placed(aged: Settings, raw_time: Raw) -> None:
    status, answer, placed = _serve_and_post(aged, raw_time)
    assert status == 422, answer
    assert answer["code"] == "future_signal"
    error = str(answer["error"])
    found = re.fullmatch(
        r"Signal from the future: its time is (\d+) s ahead of this server's clock \(allowed skew 5 s\)", error
    )
    assert found, error
    assert 50 <= int(found.group(1)) <= 3600
    assert "orderId" not in answer
    assert placed == 0


@pytest.mark.parametrize(
    "raw_time",
    [
        literal('"2999-01-01T00:00:00Z"'),
        literal('"9999-12-31T23:59:59+00:00"'),
        literal('"0001-01-01T00:00:00-01:00"'),
        literal("1E+59"),
        literal("-1E+59"),
        literal('"1e999999"'),
        literal('"-1e999999"'),
        literal('"Infinity"'),
    ],
    ids=["year-2999", "year-9999", "year-1", "1e59", "-1e59", "1e999999", "-1e999999", "infinity"],
)
def test_an_absurd_time_is_a_400_and_nothing_placed(aged: Settings, raw_time: Raw) -> None:
    status, answer, placed = _serve_and_post(aged, raw_time)
    assert status == 400, answer
    assert answer["code"] == "invalid_payload"
    assert str(answer["error"]).startswith("Invalid time: ")
    assert "between 2000 and 2100" in str(answer["error"])
    assert "inf" not in str(answer["error"]).replace("Infinity", "")
    assert placed == 0


@pytest.mark.parametrize("raw_time", [iso_in(3), iso_in(-30), ms_in(2)], ids=["3s-ahead", "30s-old", "ms-2s-ahead"])
def test_a_time_within_the_skew_and_the_age_is_placed(aged: Settings, raw_time: Raw) -> None:
    status, answer, placed = _serve_and_post(aged, raw_time)
    assert status == 200, answer
    assert placed == 1


def test_the_allowed_skew_is_the_routes_max_future_s(aged: Settings) -> None:
    aged.data["routes"]["BINANCE"]["max_future_s"] = 7200
    status, answer, placed = _serve_and_post(aged, iso_in(3600))
    assert (status, placed) == (200, 1), answer


def test_the_default_skew_is_5_s(tmp_path: Path) -> None:
    settings = load_settings("development", CONFIG_DIR, environ={"ORDERGATE_DB": str(tmp_path / "j.db")})
    assert settings.data["routes"]["BINANCE"]["max_future_s"] == 5


def test_without_max_age_s_a_given_time_is_still_checked_but_not_its_age(settings: Settings) -> None:
    """A route that does not judge ages needs no ``time``, but one that is given must be a time
    and not from the future: it is journaled and shown as when the signal was sent."""
    assert settings.data["routes"]["BINANCE"]["max_age_s"] is None
    for raw_time, expected in (
        (literal('"2999-01-01T00:00:00Z"'), (400, 0)),
        (literal("-1E+59"), (400, 0)),
        (literal("true"), (400, 0)),
        (literal('{"at": 1}'), (400, 0)),
        (iso_in(3600), (422, 0)),
        (literal('"2020-01-01T00:00:00Z"'), (200, 1)),
        (iso_in(-86400), (200, 1)),
    ):
        status, answer, placed = _serve_and_post(settings, raw_time)
        assert (status, placed) == expected, answer
    app = create_app(settings)
    try:
        with serving(app) as server:
            status, answer = server.post("{" + BTC + "}")  # no time at all: fine here
        assert status == 200, answer
    finally:
        app.journal.close()


def test_replay_as_sent_never_takes_an_absurd_time_for_the_clock(aged: Settings, tmp_path: Path) -> None:
    """``replay --as-sent`` evaluates a signal at its own time: an absurd one is refused, not
    evaluated in the year 2999 (where it would be fresh)."""
    path = tmp_path / "absurd.jsonl"
    path.write_text("{" + BTC + ', "time": "2999-01-01T00:00:00Z"}\n')
    tally = Replay(aged, as_sent=True).run(read_items(str(path)))
    assert tally.counts == {("BINANCE", "rejected"): 1}
    assert next(iter(tally.reasons))[0].startswith("Invalid time: '2999-01-01T00:00:00Z'")
