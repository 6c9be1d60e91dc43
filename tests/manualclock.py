"""A wall clock that moves only when a test says so (for `sources.ping.clock.Clock`)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Callable


@dataclasses.dataclass
class _Timer:
    when: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    def __init__(self, start: datetime.datetime) -> None:
        self._now = start.timestamp()
        self._timers: list[_Timer] = []
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self._now, datetime.UTC)

    def call_at(self, when: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(when, callback)
        self._timers.append(timer)
        if when <= self._now:
            asyncio.get_running_loop().call_soon(self._run_due)
        return timer

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        done = asyncio.Event()
        self.call_at(self._now + seconds, done.set)
        await done.wait()

    def _run_due(self) -> None:
        due = [t for t in self._timers if t.when <= self._now and not t.cancelled]
        self._timers = [t for t in self._timers if t.when > self._now and not t.cancelled]
        for timer in due:
            timer.callback()

    async def advance_to(self, moment: datetime.datetime) -> None:
        """Move to `moment`, firing timers on the way, and let woken tasks run."""
        self._now = max(self._now, moment.timestamp())
        self._run_due()
        for _ in range(5):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        await self.advance_to(self.now() + datetime.timedelta(seconds=seconds))
