"""``market_hours``: refuse signals while the exchange is closed (weekends, holidays, after hours)."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ordergate.config import read_yaml
from ordergate.pipeline.errors import ConfigError, Rejection
from ordergate.pipeline.signal import Signal
from ordergate.pipeline.stage import RouteContext

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$"


def _clock(text: str) -> time:
    return time.max if text == "24:00" else time.fromisoformat(text)


def read_holidays(path: Path) -> dict[date, str]:
    """A holiday file: ``{holidays: {2026-01-26: Republic Day, ...}}`` (dates as YAML dates or strings)."""
    data = read_yaml(path)
    entries = data.get("holidays") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError("expected a 'holidays' mapping of date: name", file=str(path))
    holidays: dict[date, str] = {}
    for key, name in entries.items():
        try:
            day = key if isinstance(key, date) else date.fromisoformat(str(key))
        except ValueError:
            raise ConfigError(f"{key!r} is not a date (YYYY-MM-DD)", file=str(path), path=f"holidays.{key}") from None
        holidays[day] = str(name)
    return holidays


class MarketHours:
    """Pass only while the market is open: ``open``-``close`` on ``days`` in ``timezone``, except
    the dates of ``holidays`` (a file beside the config). Refuses with 422 and the reason."""

    options_schema: ClassVar[dict[str, Any]] = {
        "enabled": {"type": "boolean", "default": True},
        "market": {"type": "string", "default": "NSE"},
        "timezone": {"type": "string", "default": "Asia/Kolkata"},
        "open": {"type": "string", "regex": _CLOCK, "default": "09:15"},
        "close": {"type": "string", "regex": _CLOCK, "default": "15:30"},
        "days": {"type": "list", "allowed": list(DAYS), "default": ["mon", "tue", "wed", "thu", "fri"]},
        "holidays": {"type": "string", "nullable": True, "default": None},  # relative to the config dir
    }
    requires: ClassVar[tuple[str, ...]] = ("schema",)

    def __init__(self, options: dict[str, Any], route: RouteContext) -> None:
        self.enabled: bool = options["enabled"]
        self.market: str = options["market"]
        try:
            self.zone = ZoneInfo(options["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {options['timezone']!r}", path="market_hours.timezone") from None
        self.open, self.close = _clock(options["open"]), _clock(options["close"])
        self.days = frozenset(DAYS.index(d) for d in options["days"])
        self.holidays: dict[date, str] = {}
        if options["holidays"] and self.enabled:
            self.holidays = read_holidays(route.config_dir / options["holidays"])
        zone_name = datetime(2026, 1, 1, tzinfo=self.zone).tzname() or options["timezone"]
        self.hours = f"{options['open']}–{options['close']} {zone_name}"

    def closed_reason(self, moment: datetime) -> str | None:
        """Why the market is closed at ``moment``, or None when it is open."""
        local = moment.astimezone(self.zone)
        holiday = self.holidays.get(local.date())
        if holiday is not None:
            return f"Market closed: {local.date().isoformat()} is an {self.market} holiday ({holiday})"
        if local.weekday() not in self.days or not self.open <= local.time() < self.close:
            days = ", ".join(d.title() for i, d in enumerate(DAYS) if i in self.days)
            return f"Market closed: {self.market} trades {self.hours} ({days})"
        return None

    def __call__(self, signal: Signal) -> Signal:
        if not self.enabled:
            return signal
        reason = self.closed_reason(datetime.fromtimestamp(signal.received_at, self.zone))
        if reason is not None:
            raise Rejection(reason, code="market_closed")
        return signal
