"""A work queue of object keys with per-key dedupe and rate-limited requeue.

Semantics of client-go's workqueue, which level-based controllers rely on:

- a key is in the queue at most once, however many events name it (dedupe);
- a key being processed is never handed to a second worker; if it is added meanwhile it
  is marked dirty and queued again when the worker calls `done` (no lost update, no two
  reconciles of one object at the same time);
- `requeue_rate_limited(key)` re-adds after an exponential per-key delay
  (base * 2^failures, capped), `forget(key)` resets the failure count after a success;
- `add_after(key, delay)` for periodic re-checks.

The clock is injectable (`loop.time` by default) and delays run on the event loop's
timers, so tests drive it with a virtual clock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Per-key exponential requeue delay: base * 2^failures, at most cap (seconds).

    5 ms base and 1000 s cap are client-go's default item rate limiter: a quick first retry
    for transient conflicts, backing off to ~17 minutes for things that stay broken.
    """

    base: float = 0.005
    cap: float = 1000.0

    def delay(self, failures: int) -> float:
        return float(min(self.cap, self.base * 2.0 ** min(failures, 60)))


class WorkQueue:
    def __init__(self, backoff: Backoff | None = None) -> None:
        self.backoff = backoff or Backoff()
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._shut = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: str) -> None:
        if self._shut:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._queue.append(key)
        self._wake()

    def add_after(self, key: str, delay: float) -> None:
        """Add `key` after `delay` seconds; an earlier pending timer for the key wins."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None and not pending.cancelled() and pending.when() <= when:
            return
        if pending is not None:
            pending.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def requeue_rate_limited(self, key: str) -> float:
        """Re-add after the key's backoff delay; returns the delay used."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = self.backoff.delay(failures)
        self.add_after(key, delay)
        return delay

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    async def get(self) -> str:
        """Wait for the next key and mark it processing; pair with `done(key)`."""
        while not self._queue:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        key = self._queue.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def shutdown(self) -> None:
        self._shut = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
