"""One assigned partition in the adapter: its backlog of fetched records, the deliveries in
flight, and the offset it may commit.

At-least-once hinges on `Offsets`: a record's offset is *taken* when fetched and *finished*
when the sink (or the dead-letter sink) accepted it, or when it was given up for good (a sink
refusing it with a non-retryable status and no dead-letter sink, as Knative). The committable
position is one past the longest finished prefix of taken offsets, so a record still in flight
or waiting is never skipped by a commit, whatever order unordered deliveries finish in.
Offsets are not contiguous (compaction, transaction markers): the position follows the taken
ones.

`Lane` feeds the workers of a partition: `ordered` (Knative's default) runs one worker, so
one event per partition is in flight and events reach the sink in offset order; `unordered`
runs up to `in_flight` workers on the same backlog. The backlog is bounded by `limit`: past
it the partition is paused at the consumer (it stays in the group, other partitions go on)
and resumed below half of it.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

from kevents import kafka

TopicPartition = tuple[str, int]


class Offsets:
    """Taken and finished offsets of one partition; `position` is what may be committed."""

    def __init__(self) -> None:
        self._taken: collections.deque[int] = collections.deque()
        self._finished: set[int] = set()
        self.position: int | None = None
        """Next offset to read after the finished prefix (None: nothing finished yet)."""
        self.committed: int | None = None
        """The position last committed (None: not by this process)."""
        self.first: int | None = None
        """The first offset taken: where this process started reading the partition."""

    def take(self, offset: int) -> None:
        if self.first is None:
            self.first = offset
        self._taken.append(offset)

    def finish(self, offset: int) -> None:
        self._finished.add(offset)
        while self._taken and self._taken[0] in self._finished:
            done = self._taken.popleft()
            self._finished.discard(done)
            self.position = done + 1

    @property
    def pending(self) -> int:
        """Records taken and not finished."""
        return len(self._taken)

    def to_commit(self) -> int | None:
        """The position, when it moved past the last commit."""
        if self.position is not None and self.position != self.committed:
            return self.position
        return None


Deliver = Callable[[kafka.Record], Awaitable[None]]
"""Deliver one record until it is finished (accepted, dead-lettered or given up); returns
only then, or raises `Abandoned` (or is cancelled) leaving it unfinished."""


class Abandoned(Exception):
    """A record left unfinished (uncommitted) because the adapter is stopping."""


class Lane:
    """The backlog and workers of one assigned partition."""

    def __init__(self, topic_partition: TopicPartition, *, limit: int, workers: int) -> None:
        self.topic_partition = topic_partition
        self.offsets = Offsets()
        self.limit = limit
        self.workers = workers
        self.paused = False
        self.closed = False
        """Revoked or shutting down: no record is taken from the backlog any more."""
        self._backlog: asyncio.Queue[kafka.Record | None] = asyncio.Queue()
        """Records to deliver; None wakes a worker to end (one per worker on `close`)."""
        self._busy = 0

    @property
    def waiting(self) -> int:
        return 0 if self.closed else self._backlog.qsize()

    @property
    def idle(self) -> bool:
        return self.waiting == 0 and self._busy == 0

    def offer(self, record: kafka.Record) -> None:
        self.offsets.take(record.offset)
        self._backlog.put_nowait(record)  # wakes one waiting worker, not all of them

    @property
    def full(self) -> bool:
        return self.waiting >= self.limit

    @property
    def drained(self) -> bool:
        """Low enough to resume a paused partition."""
        return self.waiting <= self.limit // 2

    def close(self) -> None:
        """Stop taking records; the backlog is left (its offsets stay uncommitted)."""
        self.closed = True
        for _ in range(self.workers):
            self._backlog.put_nowait(None)

    async def work(self, deliver: Deliver, on_finished: Callable[[Lane], None]) -> None:
        """One worker: deliver records from the backlog until the lane is closed."""
        while True:
            record = await self._backlog.get()
            if record is None or self.closed:
                return
            self._busy += 1
            try:
                await deliver(record)
            except Abandoned:
                return
            finally:
                self._busy -= 1
            self.offsets.finish(record.offset)
            on_finished(self)
