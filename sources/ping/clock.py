"""Time as the PingSource adapter sees it: wall-clock instants and timers on them.

Tests inject a manual clock that moves only when told, so fire times are asserted exactly.
The same object serves the `Sender` (its retry waits), hence the superset of `sender.Clock`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from kevents import sender

MAX_TIMER = 30.0
"""Seconds. A timer never sleeps longer, so a stepped wall clock (NTP) is noticed within it."""


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(sender.Clock, Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (UTC)."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Call `callback` at wall time `when` or earlier (callers re-check the time)."""
        ...


class SystemClock(sender.SystemClock):
    def time(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        delay = min(max(0.0, when - time.time()), MAX_TIMER)
        return asyncio.get_running_loop().call_later(delay, callback)
