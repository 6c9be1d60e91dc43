"""One member of a Kafka consumer group delivering records at-least-once: the consumer-lane
design every Kafka consumer of kevents shares (Kafka Broker Triggers, KafkaChannel
subscriptions; the KafkaSource adapter's lanes are the same design).

```
Kafka --poll--> Lane per assigned partition --worker(s)--> deliver(record) -> finished?
                  (bounded; full = partition paused)          no: held, tried again later
   commit every `commit_interval` <-- finished prefix of offsets (Offsets)
```

At-least-once: an offset is committed only once the record and every record before it in its
partition are *finished* (`deliver` returned True). `deliver` returning False holds the
record: its partition tries it again after a growing pause (`hold_initial` .. `hold_max`),
nothing is committed past it. A crash or a rebalance redelivers at most what was fetched
after the last commit: duplicates come only from that window, nothing is lost.

`ordered` runs one worker per partition (one record in flight, offset order); unordered runs
`in_flight` workers on the partition's backlog. The backlog is bounded by `partition_buffer`:
past it the partition is paused at the consumer (it stays in the group) and resumed below
half of it, so a slow subscriber costs memory for at most that many records per partition.

Rebalances: the revoke callback commits the finished offsets of the leaving partitions (on
the consumer's thread, before the group moves them) and their lanes close: records still
waiting are left to the next owner; a held record is abandoned (the next owner delivers it).
`stop()` stops polling, lets deliveries in flight finish, commits, and leaves the group so its
partitions move at once. Each member is `async def run()` for `kevents.runner` or a caller's
TaskGroup; the workers are tasks of the member's own TaskGroup.

An `Observer` (optional; its methods do nothing unless overridden) is told what a caller's
metrics and readiness need: each poll's records or problem, each commit with its duration,
assignment and paused partitions, each hold. `lag()` is each owned partition's distance from
the committed (else first read) position to its end as last fetched.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from kevents import errors, kafka

logger = logging.getLogger(__name__)

TopicPartition = tuple[str, int]
POLL_BATCH = 500
"""Records fetched per poll at most."""
POLL_TIMEOUT = 0.5
"""Seconds a poll waits for records; also bounds how late a due commit is."""
FETCH_BUFFER_KB = 16384
"""librdkafka prefetches up to this many KiB per consumer (its default is 64 MiB)."""
SESSION_TIMEOUT_MS = 10000
"""A member that stops heartbeating (a killed pod) loses its partitions after this long:
10 s as Knative's sarama default, not librdkafka's 45 s."""


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


class Abandoned(Exception):
    """A record left unfinished (uncommitted): stopping, or its partition moved away."""


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

    async def work(
        self,
        deliver: Callable[[kafka.Record], Awaitable[None]],
        on_finished: Callable[[Lane], None],
    ) -> None:
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


class ConsumerLike(Protocol):
    """What a member needs of `kevents.kafka.Consumer` (tests may wrap the real one)."""

    async def start(self) -> None: ...
    async def poll(self, max_records: int = 500, *, wait: float = 1.0) -> list[kafka.Record]: ...
    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None: ...
    def pause(self, partitions: Sequence[tuple[str, int]]) -> None: ...
    def resume(self, partitions: Sequence[tuple[str, int]]) -> None: ...
    def high_watermark(self, topic: str, partition: int) -> int | None: ...
    async def close(self) -> None: ...


class Observer:
    """What a member reports as it goes (for metrics, readiness); every method is a no-op
    here. Called on the event loop, never on the consumer's thread."""

    def polled(self, records: Sequence[kafka.Record], problem: str | None) -> None:
        """A poll returned `records`, or failed with `problem` (then `records` is empty)."""

    def committed(
        self, offsets: Mapping[TopicPartition, int], seconds: float, error: str | None
    ) -> None:
        """A commit of `offsets` took `seconds` and succeeded (`error` None) or not."""

    def assignment(self, partitions: Sequence[TopicPartition], paused: int) -> None:
        """The partitions this member owns now, `paused` of them paused."""

    def held(self, record: kafka.Record) -> None:
        """`record` was not delivered this round; it is tried again later."""


Deliver = Callable[[kafka.Record], Awaitable[bool]]
"""Deliver one record: True when finished (committable), False to hold it and try later."""


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    ordered: bool = True
    """One record in flight per partition (Knative's `ordered`), else `in_flight`."""
    in_flight: int = 32
    """Concurrent deliveries per partition when unordered."""
    partition_buffer: int = 500
    """Records fetched and waiting per partition before it is paused."""
    commit_interval: float = 1.0
    """Seconds between commits of finished offsets (and at revoke and stop)."""
    initial_offset: str = "earliest"
    """Where a group without committed offsets starts."""
    hold_initial: float = 1.0
    """Seconds before a held record is tried again; doubles up to `hold_max`."""
    hold_max: float = 30.0


class Member:
    """One member of `group_id` on `topics`, delivering through `deliver`."""

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        group_id: str,
        topics: Sequence[str],
        deliver: Deliver,
        options: Options = Options(),
        consumer_factory: Callable[..., ConsumerLike] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.group_id = group_id
        self.topics = tuple(topics)
        self._config = dict(config)
        self._deliver = deliver
        self.options = options
        self._factory = consumer_factory or kafka.Consumer
        self._observer = observer or Observer()
        self._lanes: dict[TopicPartition, Lane] = {}
        self._stopping = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: ConsumerLike | None = None
        self._workers = 1 if options.ordered else max(1, options.in_flight)
        self.problem: str | None = None
        """The last Kafka error polling met (None once polling works)."""
        self.delivered = 0
        """Records finished by this member (for tests and logs)."""

    @property
    def assignment(self) -> list[TopicPartition]:
        return sorted(self._lanes)

    def lag(self) -> dict[TopicPartition, int]:
        """Records between each owned partition's committed position (or, before the first
        commit, where this member started reading it) and its end as last fetched."""
        out: dict[TopicPartition, int] = {}
        consumer = self._consumer
        if consumer is None:
            return out
        for (topic, partition), lane in self._lanes.items():
            high = consumer.high_watermark(topic, partition)
            offsets = lane.offsets
            base = offsets.committed if offsets.committed is not None else offsets.first
            if high is not None and base is not None:
                out[(topic, partition)] = max(0, high - base)
        return out

    def _report_assignment(self) -> None:
        paused = sum(lane.paused for lane in self._lanes.values())
        self._observer.assignment(sorted(self._lanes), paused)

    def stop(self) -> None:
        """Stop polling; `run` then lets deliveries in flight finish, commits and leaves."""
        self._stopping.set()

    # ------------------------------------------------------------- rebalance callbacks
    # (called on the consumer's thread, inside a poll)

    def _on_assign(self, assigned: list[TopicPartition]) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._assign, list(assigned))

    def _on_revoke(self, revoked: list[TopicPartition]) -> Mapping[TopicPartition, int]:
        offsets: dict[TopicPartition, int] = {}
        for tp in revoked:
            lane = self._lanes.get(tp)
            position = lane.offsets.to_commit() if lane is not None else None
            if position is not None:
                offsets[tp] = position
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._revoke, list(revoked))
        return offsets

    def _assign(self, assigned: list[TopicPartition]) -> None:
        if self._stopping.is_set():
            return
        for tp in assigned:
            self._lane(tp)
        logger.info("Group %s: assigned %s.", self.group_id, _shown(assigned),
                    extra={"consumer_group": self.group_id})  # fmt: skip
        self._report_assignment()

    def _revoke(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            lane = self._lanes.pop(tp, None)
            if lane is not None:
                lane.close()
        logger.info("Group %s: revoked %s.", self.group_id, _shown(revoked),
                    extra={"consumer_group": self.group_id})  # fmt: skip
        self._report_assignment()

    def _lane(self, tp: TopicPartition) -> Lane:
        lane = self._lanes.get(tp)
        if lane is None:
            lane = Lane(tp, limit=self.options.partition_buffer, workers=self._workers)
            self._lanes[tp] = lane
            assert self._group is not None
            for _ in range(lane.workers):
                self._group.create_task(lane.work(self._finish, self._on_finished))
        return lane

    # ------------------------------------------------------------- the loop

    def _make_consumer(self) -> ConsumerLike:
        conf = {
            "queued.max.messages.kbytes": FETCH_BUFFER_KB,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": SESSION_TIMEOUT_MS // 3,
            **self._config,
        }
        return self._factory(
            conf, group_id=self.group_id, topics=list(self.topics),
            initial_offset=self.options.initial_offset,
            on_assign=self._on_assign, on_revoke=self._on_revoke,
        )  # fmt: skip

    async def run(self) -> None:
        """Consume until `stop()` (or cancelled); commits and leaves the group at the end."""
        self._loop = asyncio.get_running_loop()
        consumer = self._make_consumer()
        self._consumer = consumer
        try:
            await consumer.start()
            async with asyncio.TaskGroup() as group:
                self._group = group
                await self._poll_loop(consumer)
                for lane in self._lanes.values():
                    lane.close()  # workers end after the delivery in flight
        finally:
            await asyncio.shield(self._close(consumer))

    async def _close(self, consumer: ConsumerLike) -> None:
        try:
            await self._commit(consumer)
        finally:
            await consumer.close()
            logger.info("Left consumer group %s.", self.group_id,
                        extra={"consumer_group": self.group_id})  # fmt: skip

    async def _poll_loop(self, consumer: ConsumerLike) -> None:
        backoff = 0.5
        next_commit = time.monotonic() + self.options.commit_interval
        while not self._stopping.is_set():
            try:
                records = await consumer.poll(POLL_BATCH, wait=POLL_TIMEOUT)
            except errors.KafkaError as exc:
                if self.problem is None:
                    logger.warning("Group %s: polling Kafka failed (%s): %s; trying again.",
                                   self.group_id, exc.reason, exc)  # fmt: skip
                self.problem = f"{exc.reason}: {exc}"
                self._observer.polled((), self.problem)
                await self._pause_for(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if self.problem is not None:
                logger.info("Group %s: polling Kafka works again.", self.group_id)
            self.problem = None
            backoff = 0.5
            self._observer.polled(records, None)
            for record in records:
                self._lane((record.topic, record.partition)).offer(record)
            self._pause_full(consumer)
            if time.monotonic() >= next_commit:
                await self._commit(consumer)
                next_commit = time.monotonic() + self.options.commit_interval

    async def _pause_for(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    def _pause_full(self, consumer: ConsumerLike) -> None:
        full = [tp for tp, lane in self._lanes.items() if lane.full and not lane.paused]
        if full:
            consumer.pause(full)
            for tp in full:
                self._lanes[tp].paused = True
            self._report_assignment()

    def _on_finished(self, lane: Lane) -> None:
        self.delivered += 1
        if lane.paused and lane.drained and not lane.closed and self._consumer is not None:
            lane.paused = False
            self._consumer.resume([lane.topic_partition])
            self._report_assignment()

    async def _commit(self, consumer: ConsumerLike) -> None:
        offsets = {
            tp: position
            for tp, lane in self._lanes.items()
            if (position := lane.offsets.to_commit()) is not None
        }
        if not offsets:
            return
        start = time.monotonic()
        try:
            await consumer.commit(offsets)
        except errors.KafkaError as exc:
            self._observer.committed(offsets, time.monotonic() - start, f"{exc.reason}: {exc}")
            logger.warning("Group %s: committing offsets failed (%s): %s; trying again later.",
                           self.group_id, exc.reason, exc)  # fmt: skip
            return
        self._observer.committed(offsets, time.monotonic() - start, None)
        for tp, position in offsets.items():
            lane = self._lanes.get(tp)
            if lane is not None:
                lane.offsets.committed = position

    async def _finish(self, record: kafka.Record) -> None:
        """Deliver `record` until finished; `Abandoned` when stopping or moved away first."""
        tp = (record.topic, record.partition)
        lane = self._lanes.get(tp)
        hold = self.options.hold_initial
        while not await self._deliver(record):
            self._observer.held(record)
            logger.warning(
                "Group %s holds %s-%d at offset %d: not delivered; trying again in %.0f s, "
                "nothing is committed past it.", self.group_id, record.topic, record.partition,
                record.offset, hold, extra={"consumer_group": self.group_id},
            )  # fmt: skip
            await self._pause_for(hold)
            if self._stopping.is_set() or self._lanes.get(tp) is not lane:
                raise Abandoned
            hold = min(hold * 2, self.options.hold_max)


def _shown(partitions: Sequence[TopicPartition]) -> str:
    return ", ".join(f"{t}-{p}" for t, p in sorted(partitions)) or "no partitions"
