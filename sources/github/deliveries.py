"""`DeliveryCache`: the delivery ids (`X-GitHub-Delivery`) whose event reached the sink.

GitHub (or a person pressing "Redeliver") may send the same delivery again: after a timeout
on its side, after our 5xx, or days later. A redelivery of an id in the cache is answered
"duplicate" and produces no second event. The memory is bounded twice: at most `maxsize` ids
(least recently seen evicted first) and each for at most `ttl` seconds. It is per process and
lost on restart; the CloudEvent `id` is the delivery id, so a consumer can still dedupe.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Monotonic seconds; tests pass a fake."""


class DeliveryCache:
    def __init__(
        self, *, maxsize: int = 10_000, ttl: float = 72 * 3600.0, clock: Clock = time.monotonic
    ) -> None:
        """`maxsize` (10 000 ids, about 1 MB) covers hours of a busy repository; `ttl` (72 h)
        is how long GitHub keeps deliveries available for manual redelivery."""
        if maxsize < 1 or ttl <= 0:
            raise ValueError("maxsize must be >= 1 and ttl > 0")
        self.maxsize = maxsize
        self.ttl = ttl
        self._clock = clock
        self._seen: collections.OrderedDict[str, float] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, delivery_id: object) -> bool:
        """True if `delivery_id` was added less than `ttl` ago (and not evicted since)."""
        if not isinstance(delivery_id, str):
            return False
        added = self._seen.get(delivery_id)
        if added is None:
            return False
        if self._clock() - added >= self.ttl:
            del self._seen[delivery_id]
            return False
        self._seen.move_to_end(delivery_id)
        return True

    def add(self, delivery_id: str) -> None:
        """Remember `delivery_id` as delivered now; evict expired, then the least recent."""
        now = self._clock()
        self._seen[delivery_id] = now
        self._seen.move_to_end(delivery_id)
        self._expire(now)
        while len(self._seen) > self.maxsize:
            self._seen.popitem(last=False)

    def _expire(self, now: float) -> None:
        # Insertion order is not expiry order once `in` refreshed an entry; stop at the first
        # fresh one, the rest is bounded by maxsize anyway.
        while self._seen:
            oldest, added = next(iter(self._seen.items()))
            if now - added < self.ttl:
                return
            del self._seen[oldest]
