"""ordergate: TradingView alert webhooks in, broker orders out, through a chain of checks."""

__version__ = "0.1.0"
