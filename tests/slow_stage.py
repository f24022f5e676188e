"""A custom stage for tests (named in YAML as ``tests.slow_stage:SlowStage``): it waits."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from ordergate.pipeline.signal import Signal
from ordergate.pipeline.stage import RouteContext


class SlowStage:
    """Sleep ``seconds`` before passing the signal on: a signal that is slow to process."""

    options_schema: ClassVar[dict[str, Any]] = {"seconds": {"type": "decimal", "min": 0, "default": 1}}
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: dict[str, Any], route: RouteContext) -> None:
        self.seconds = float(options["seconds"])

    def __call__(self, signal: Signal) -> Signal:
        time.sleep(self.seconds)
        return signal
