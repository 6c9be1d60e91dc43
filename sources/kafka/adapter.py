"""The KafkaSource receive adapter: one member of the source's consumer group.

```
Kafka --poll--> lane per assigned partition --worker(s)--> sink (or dead-letter sink)
                  (bounded; full = partition paused)        |
   commit every `commit_interval` <-- finished prefix of offsets (partitions.Offsets)
```

At-least-once, nothing lost across restarts: an offset is committed only once the record and
every record before it in its partition were accepted by the sink or the dead-letter sink
(or refused for good with no dead-letter sink, as Knative drops it). A crash or a rebalance
redelivers at most what was fetched after the last commit: the duplicates come only from that
window. Unlike Knative, a record whose sink stays unavailable (retryable failures, attempts
exhausted, no dead-letter sink or the dead-letter sink unavailable too) is not dropped: its
partition holds it and tries another round after a growing pause (`hold_initial` up to
`hold_max`), so a sink that is down for a while receives everything once it is back.

Rebalances: the consumer's revoke callback commits the finished offsets of the partitions
leaving (on the consumer's thread, before the group moves them) and their lanes are closed:
records still waiting are left to the next owner, deliveries in flight finish but are not
committed here. Shutdown (SIGTERM) stops polling, lets deliveries in flight finish within the
grace period, commits, and leaves the group so its partitions move at once.

Spans: one CONSUMER span per record (`<topic> process`, continuing the trace of a CloudEvent
record's `traceparent`), the sender's CLIENT span per attempt inside it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace.propagation import tracecontext
from prometheus_client import CollectorRegistry

from kevents import cloudevent, delivery, errors, kafka, metrics, probes, runner, sender, settings
from sources.kafka import config, events, partitions
from sources.kafka import metrics as source_metrics

logger = logging.getLogger(__name__)

TopicPartition = partitions.TopicPartition
POLL_BATCH = 500
"""Records fetched per poll at most (one lane's worth)."""
POLL_TIMEOUT = 0.5
"""Seconds a poll waits for records; also bounds how late a due commit is."""
FETCH_BUFFER_KB = 16384
"""librdkafka prefetches up to this many KiB of records per consumer (its default is 64 MiB);
what the lanes hold on top is bounded by `partition_buffer`."""
SESSION_TIMEOUT_MS = 10000
"""A consumer that stops heartbeating (a killed pod) loses its partitions to the group's other
members after this long: 10 s as Knative's sarama default, not librdkafka's 45 s."""


class ConsumerLike(Protocol):
    """What the adapter needs of `kevents.kafka.Consumer` (tests may wrap the real one)."""

    async def start(self) -> None: ...
    async def poll(self, max_records: int = 500, *, wait: float = 1.0) -> list[kafka.Record]: ...
    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> None: ...
    def pause(self, partitions: Sequence[tuple[str, int]]) -> None: ...
    def resume(self, partitions: Sequence[tuple[str, int]]) -> None: ...
    def high_watermark(self, topic: str, partition: int) -> int | None: ...
    async def close(self) -> None: ...


Assigned = Callable[[list[tuple[str, int]]], None]
Revoked = Callable[[list[tuple[str, int]]], Mapping[tuple[str, int], int]]
ConsumerFactory = Callable[[Assigned, Revoked], ConsumerLike]


class Adapter:
    def __init__(
        self,
        adapter_settings: settings.AdapterSettings,
        source: config.Settings,
        *,
        registry: CollectorRegistry,
        readiness: probes.Readiness,
        tracer_provider: trace.TracerProvider | None = None,
        consumer_factory: ConsumerFactory | None = None,
    ) -> None:
        self._settings = adapter_settings
        self._source = source
        self._readiness = readiness
        self.metrics = source_metrics.SourceMetrics(registry)
        sender_metrics = metrics.SenderMetrics(
            registry,
            namespace=adapter_settings.namespace,
            name=adapter_settings.name,
            resource_group="kafkasources.sources.knative.dev",
        )
        self.sender = sender.Sender.from_settings(
            adapter_settings,
            policy=source.policy,
            sender_metrics=sender_metrics,
            tracer_provider=tracer_provider,
            limit_per_host=max(sender.DEFAULT_LIMIT_PER_HOST, source.unordered_in_flight),
        )
        self._tracer = (tracer_provider or trace.NoOpTracerProvider()).get_tracer(
            "kevents.kafkasource"
        )
        self._consumer_factory = consumer_factory or self._real_consumer
        self._lanes: dict[TopicPartition, partitions.Lane] = {}
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: ConsumerLike | None = None
        self._workers = 1 if source.ordering == "ordered" else source.unordered_in_flight
        self._holding: set[TopicPartition] = set()

    # ------------------------------------------------------------------ wiring

    def _real_consumer(self, assigned: Assigned, revoked: Revoked) -> ConsumerLike:
        src = self._source
        conf = kafka.client_config(
            list(src.bootstrap_servers),
            src.auth,
            client_id=f"kafkasource-{self._settings.namespace}-{self._settings.name}",
            queued_max_messages_kbytes=FETCH_BUFFER_KB,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=SESSION_TIMEOUT_MS // 3,
        )
        return kafka.Consumer(
            conf, group_id=src.consumer_group, topics=list(src.topics),
            initial_offset=src.initial_offset, on_assign=assigned, on_revoke=revoked,
        )  # fmt: skip

    def components(self) -> list[runner.Service | runner.Component]:
        return [self.sender, runner.Service(name="kafka consumer", run=self.run, stop=self.stop)]

    # ------------------------------------------------------------------ rebalance callbacks
    # (called on the consumer's thread, inside a poll)

    def _on_assign(self, assigned: list[tuple[str, int]]) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._assign, list(assigned))

    def _on_revoke(self, revoked: list[tuple[str, int]]) -> Mapping[tuple[str, int], int]:
        """The offsets to commit before the partitions leave (read from the loop's state:
        plain ints, so a torn read is impossible); their lanes close on the loop."""
        offsets: dict[tuple[str, int], int] = {}
        for tp in revoked:
            lane = self._lanes.get(tp)
            position = lane.offsets.to_commit() if lane is not None else None
            if position is not None:
                offsets[tp] = position
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._revoke, list(revoked))
        return offsets

    def _assign(self, assigned: list[tuple[str, int]]) -> None:
        if self._stopping.is_set():
            return  # leaving the group: no new workers
        for tp in assigned:
            self._lane(tp)
        logger.info("Assigned %d partition(s): %s.", len(assigned), _shown(assigned))
        self.metrics.assigned.set(len(self._lanes))

    def _revoke(self, revoked: list[tuple[str, int]]) -> None:
        for tp in revoked:
            lane = self._lanes.pop(tp, None)
            if lane is not None:
                lane.close()
            self._forget_gauges(tp)
        logger.info("Revoked %d partition(s): %s.", len(revoked), _shown(revoked))
        self.metrics.assigned.set(len(self._lanes))
        self._count_paused()

    def _lane(self, tp: TopicPartition) -> partitions.Lane:
        lane = self._lanes.get(tp)
        if lane is None:
            lane = partitions.Lane(tp, limit=self._source.partition_buffer, workers=self._workers)
            self._lanes[tp] = lane
            assert self._group is not None
            for _ in range(lane.workers):
                self._group.create_task(lane.work(self._deliver, self._on_finished))
        return lane

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        consumer = self._consumer_factory(self._on_assign, self._on_revoke)
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

    async def stop(self) -> None:
        """Stop polling, let deliveries in flight finish, commit, leave the group."""
        self._stopping.set()
        await self._finished.wait()

    async def _close(self, consumer: ConsumerLike) -> None:
        try:
            await self._commit(consumer)
        finally:
            try:
                await consumer.close()
            finally:
                self._finished.set()
                logger.info("Left consumer group %s.", self._source.consumer_group)

    async def _poll_loop(self, consumer: ConsumerLike) -> None:
        backoff = 0.5
        next_commit = time.monotonic() + self._source.commit_interval
        while not self._stopping.is_set():
            try:
                records = await consumer.poll(POLL_BATCH, wait=POLL_TIMEOUT)
            except errors.KafkaError as exc:
                self._readiness.set_not_ready(f"Kafka: {exc}")
                logger.warning("Polling Kafka failed (%s): %s; trying again in %.1f s.",
                               exc.reason, exc, backoff)  # fmt: skip
                await self._pause_for(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            self._readiness.set_ready()
            received: collections.Counter[str] = collections.Counter()
            for record in records:
                self._lane((record.topic, record.partition)).offer(record)
                received[record.topic] += 1
            for topic, count in received.items():
                self.metrics.records_in.labels(topic).inc(count)
            self._pause_full(consumer)
            if time.monotonic() >= next_commit:
                await self._commit(consumer)
                next_commit = time.monotonic() + self._source.commit_interval

    async def _pause_for(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    def _pause_full(self, consumer: ConsumerLike) -> None:
        full = [tp for tp, lane in self._lanes.items() if lane.full and not lane.paused]
        if not full:
            return
        consumer.pause(full)
        for tp in full:
            self._lanes[tp].paused = True
        self._count_paused()

    def _on_finished(self, lane: partitions.Lane) -> None:
        if lane.paused and lane.drained and not lane.closed and self._consumer is not None:
            lane.paused = False
            self._consumer.resume([lane.topic_partition])
            self._count_paused()

    def _count_paused(self) -> None:
        self.metrics.paused.set(sum(lane.paused for lane in self._lanes.values()))

    async def _commit(self, consumer: ConsumerLike) -> None:
        offsets = {
            tp: position
            for tp, lane in self._lanes.items()
            if (position := lane.offsets.to_commit()) is not None
        }
        if offsets:
            start = time.monotonic()
            try:
                await consumer.commit(offsets)
            except errors.KafkaError as exc:
                self.metrics.commits.labels("failed").inc()
                self.metrics.commit_duration.labels("failed").observe(time.monotonic() - start)
                logger.warning("Committing offsets failed (%s): %s; trying again later.",
                               exc.reason, exc)  # fmt: skip
            else:
                self.metrics.commits.labels("ok").inc()
                self.metrics.commit_duration.labels("ok").observe(time.monotonic() - start)
                for tp, position in offsets.items():
                    lane = self._lanes.get(tp)
                    if lane is not None:
                        lane.offsets.committed = position
        self._update_lag(consumer)

    def _update_lag(self, consumer: ConsumerLike) -> None:
        for (topic, partition), lane in self._lanes.items():
            high = consumer.high_watermark(topic, partition)
            base = lane.offsets.committed if lane.offsets.committed is not None else None
            if base is None:
                base = lane.offsets.first
            if high is None or base is None:
                continue
            self.metrics.lag.labels(topic, str(partition)).set(max(0, high - base))

    def _forget_gauges(self, tp: TopicPartition) -> None:
        try:
            self.metrics.lag.remove(tp[0], str(tp[1]))
        except KeyError:
            pass

    # ------------------------------------------------------------------ delivery

    async def _deliver(self, record: kafka.Record) -> None:
        """Deliver `record` until it is finished; raises `Abandoned` when stopping first."""
        src, adapter_settings = self._source, self._settings
        event, carried = events.to_event(
            record, namespace=adapter_settings.namespace, name=adapter_settings.name,
            key_type=src.key_type,
        )  # fmt: skip
        parent = None
        traceparent = event.get_extension("traceparent") if carried else None
        if isinstance(traceparent, str):
            parent = tracecontext.TraceContextTextMapPropagator().extract(
                {"traceparent": traceparent}
            )
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.operation": "process",
            "messaging.destination.name": record.topic,
            "messaging.kafka.destination.partition": record.partition,
            "messaging.kafka.message.offset": record.offset,
            "messaging.kafka.consumer.group": src.consumer_group,
            "cloudevents.event_id": event.get_id(),
            "cloudevents.event_type": event.get_type(),
            "cloudevents.event_source": event.get_source(),
        }
        tp = (record.topic, record.partition)
        lane = self._lanes.get(tp)
        with self._tracer.start_as_current_span(
            f"{record.topic} process", context=parent, kind=trace.SpanKind.CONSUMER,
            attributes=attributes,
        ):  # fmt: skip
            hold = src.hold_initial
            while True:
                outcome = await self._round(event)
                if outcome is not None:
                    self.metrics.records_out.labels(record.topic, outcome).inc()
                    if tp in self._holding:
                        self._holding.discard(tp)
                        logger.info("Partition %s-%d delivers again.", *tp)
                    return
                self.metrics.held.labels(record.topic).inc()
                if tp not in self._holding:
                    self._holding.add(tp)
                    logger.warning(
                        "Partition %s-%d holds record at offset %d: its sink is unavailable; "
                        "trying again with a pause of up to %.0f s, nothing is committed past it.",
                        record.topic, record.partition, record.offset, src.hold_max,
                        extra={"event_id": event.get_id()},
                    )  # fmt: skip
                await self._pause_for(hold)
                if self._stopping.is_set() or self._lanes.get(tp) is not lane:
                    # stopping, or the partition went to another member: it redelivers
                    self._holding.discard(tp)
                    raise partitions.Abandoned
                hold = min(hold * 2, src.hold_max)

    async def _round(self, event: cloudevent.CloudEvent) -> str | None:
        """One round of attempts (the delivery policy) to the sink, then the dead-letter sink:
        the outcome, or None when the record should be tried again later."""
        sink, dls = self._settings.sink, self._source.dead_letter_sink
        encoding = self._source.encoding
        result = await self.sender.send(event, sink, encoding=encoding)
        if result.ok:
            return "delivered"
        if dls:
            extensions = delivery.dead_letter_extensions(result, sink)
            dead_event = cloudevent.apply_overrides(event, extensions)
            dead = await self.sender.send(dead_event, dls, encoding=encoding)
            if dead.ok:
                return "dead_lettered"
            return None if dead.retryable else "dropped"
        return None if result.retryable else "dropped"


def _shown(partitions_: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{t}-{p}" for t, p in sorted(partitions_)) or "none"
