"""The ``market_hours`` stage: NSE's session, weekdays and holidays, in IST."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from falcon import testing

from ordergate.app import create_app
from ordergate.compose import build_service
from ordergate.config import Settings, load_settings
from ordergate.pipeline.errors import ConfigError
from ordergate.stages.market_hours import MarketHours
from tests.conftest import CONFIG_DIR, ROOT, SEED_ORDERS

IST_NAME = ZoneInfo("Asia/Kolkata")


def stage(**options: Any) -> MarketHours:
    """The stage as the shipped equities pipeline declares it."""
    settings = load_settings("live", CONFIG_DIR, environ={"WEBHOOK_SECRET": "x"})
    service = build_service(settings)
    runner = service.runners["FLATTRADE"]
    built = dict(runner.stages)["market_hours"]
    assert isinstance(built, MarketHours)
    if not options:
        return built
    defaults = {k: v.get("default") for k, v in MarketHours.options_schema.items()}
    return MarketHours({**defaults, **options}, runner.route)


def ist(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=IST_NAME)


@pytest.mark.parametrize(
    ("moment", "reason"),
    [
        ("2026-11-25T09:15:00", None),  # a Wednesday: the bell
        ("2026-11-25T12:00:00", None),
        ("2026-11-25T15:29:59", None),
        ("2026-11-25T09:14:59", "Market closed: NSE trades 09:15–15:30 IST (Mon, Tue, Wed, Thu, Fri)"),
        ("2026-11-25T15:30:00", "Market closed: NSE trades 09:15–15:30 IST (Mon, Tue, Wed, Thu, Fri)"),
        ("2026-11-28T11:00:00", "Market closed: NSE trades 09:15–15:30 IST (Mon, Tue, Wed, Thu, Fri)"),  # Saturday
        ("2026-12-25T11:00:00", "Market closed: 2026-12-25 is an NSE holiday (Christmas)"),
        ("2026-11-24T11:00:00", "Market closed: 2026-11-24 is an NSE holiday (Prakash Gurpurb Sri Guru Nanak Dev)"),
    ],
)
def test_the_shipped_nse_session(moment: str, reason: str | None) -> None:
    assert stage().closed_reason(ist(moment)) == reason


def test_times_in_other_zones_are_read_in_ist() -> None:
    # 04:00 UTC is 09:30 IST: open; 10:00 UTC is 15:30 IST: closed
    assert stage().closed_reason(datetime.fromisoformat("2026-11-25T04:00:00+00:00")) is None
    assert stage().closed_reason(datetime.fromisoformat("2026-11-25T10:00:00+00:00")) is not None


def test_hours_and_days_are_options() -> None:
    evening = stage(market="MCX", open="09:00", close="23:30", days=["mon", "tue", "wed", "thu", "fri", "sat"])
    assert evening.closed_reason(ist("2026-11-28T22:00:00")) is None
    assert evening.closed_reason(ist("2026-11-29T22:00:00")) == (
        "Market closed: MCX trades 09:00–23:30 IST (Mon, Tue, Wed, Thu, Fri, Sat)"
    )


def _with_holiday_today(tmp_path: Path) -> Settings:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    today = datetime.now(IST_NAME).date().isoformat()
    (config / "markets" / "nse-holidays.yaml").write_text(f"holidays:\n  {today}: Test Holiday\n")
    (config / "environments" / "development.yaml").write_text("limits: {max_orders_per_minute: 600}\n")
    return load_settings("development", config, environ={"ORDERGATE_DB": str(tmp_path / "j.db")})


def test_a_signal_on_a_holiday_answers_422_and_places_nothing(tmp_path: Path) -> None:
    app = create_app(_with_holiday_today(tmp_path))
    try:
        result = testing.TestClient(app).simulate_post("/webhook", json=SEED_ORDERS[3])
        today = datetime.now(IST_NAME).date().isoformat()
        assert result.status_code == 422
        assert result.json["error"] == f"Market closed: {today} is an NSE holiday (Test Holiday)"
        assert (result.json["stage"], result.json["code"]) == ("market_hours", "market_closed")
        assert app.service.brokers["paper_nse"].placements() == []  # type: ignore[attr-defined]
        # the crypto routes have no market hours
        assert testing.TestClient(app).simulate_post("/webhook", json=SEED_ORDERS[0]).status_code == 200
    finally:
        app.journal.close()


def test_the_paper_environments_trade_at_any_hour(client: testing.TestClient) -> None:
    assert client.simulate_post("/webhook", json=SEED_ORDERS[3]).status_code == 200


def test_a_bad_holiday_file_names_itself(tmp_path: Path) -> None:
    settings = _with_holiday_today(tmp_path)
    holidays = settings.config_dir / "markets" / "nse-holidays.yaml"
    holidays.write_text("holidays:\n  Christmas: 2026-12-25\n")
    with pytest.raises(ConfigError) as info:
        build_service(settings)
    assert str(info.value) == f"{holidays}:holidays.Christmas: 'Christmas' is not a date (YYYY-MM-DD)"
