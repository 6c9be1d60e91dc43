"""The KafkaSource receive adapter: one member of the source's consumer group.

```
Kafka --poll--> lane per assigned partition --worker(s)--> sink (or dead-letter sink)
                  (bounded; full = partition paused)        |
   commit every `commit_interval` <-- finished prefix of offsets
```

The consumer-group mechanics (lanes, offsets, pause/resume, rebalance commits, holds) are
`kevents.consumergroup.Member`, shared with the Kafka Broker's Triggers; this module turns a
record into the event a KafkaSource sends, delivers it and reports metrics and readiness.

At-least-once, nothing lost across restarts: an offset is committed only once the record and
every record before it in its partition were accepted by the sink or the dead-letter sink
(or refused for good with no dead-letter sink, as Knative drops it). A crash or a rebalance
redelivers at most what was fetched after the last commit: the duplicates come only from that
window. Unlike Knative, a record whose sink stays unavailable (retryable failures, attempts
exhausted, no dead-letter sink or the dead-letter sink unavailable too) is not dropped: its
partition holds it and tries another round after a growing pause (`hold_initial` up to
`hold_max`), so a sink that is down for a while receives everything once it is back.

Shutdown (SIGTERM) stops polling, lets deliveries in flight finish within the grace period,
commits, and leaves the group so its partitions move at once.

Spans: one CONSUMER span per round of attempts on a record (`<topic> process`, continuing the
trace of a CloudEvent record's `traceparent`), the sender's CLIENT span per attempt inside it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace.propagation import tracecontext
from prometheus_client import CollectorRegistry

from kevents import (
    cloudevent,
    consumergroup,
    delivery,
    kafka,
    metrics,
    probes,
    runner,
    sender,
    settings,
)
from sources.kafka import config, events
from sources.kafka import metrics as source_metrics

logger = logging.getLogger(__name__)

TopicPartition = consumergroup.TopicPartition
LAG_INTERVAL = 1.0
"""Seconds between lag updates while polling (commits update it too)."""


class Adapter(consumergroup.Observer):
    def __init__(
        self,
        adapter_settings: settings.AdapterSettings,
        source: config.Settings,
        *,
        registry: CollectorRegistry,
        readiness: probes.Readiness,
        tracer_provider: trace.TracerProvider | None = None,
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
        client = kafka.client_config(
            list(source.bootstrap_servers), source.auth,
            client_id=f"kafkasource-{adapter_settings.namespace}-{adapter_settings.name}",
        )  # fmt: skip
        options = consumergroup.Options(
            ordered=source.ordering == "ordered", in_flight=source.unordered_in_flight,
            partition_buffer=source.partition_buffer, commit_interval=source.commit_interval,
            initial_offset=source.initial_offset, hold_initial=source.hold_initial,
            hold_max=source.hold_max,
        )  # fmt: skip
        self.member = consumergroup.Member(
            client, group_id=source.consumer_group, topics=source.topics,
            deliver=self._deliver, options=options, observer=self,
        )  # fmt: skip
        self._finished = asyncio.Event()
        self._owned: set[TopicPartition] = set()
        self._lag_due = 0.0

    def components(self) -> list[runner.Service | runner.Component]:
        return [self.sender, runner.Service(name="kafka consumer", run=self.run, stop=self.stop)]

    async def run(self) -> None:
        try:
            await self.member.run()
        finally:
            self._finished.set()

    async def stop(self) -> None:
        """Stop polling, let deliveries in flight finish, commit, leave the group."""
        self.member.stop()
        await self._finished.wait()

    # ------------------------------------------------------------------ what the member reports

    def polled(self, records: Sequence[kafka.Record], problem: str | None) -> None:
        if problem is not None:
            self._readiness.set_not_ready(f"Kafka: {problem}")
            return
        self._readiness.set_ready()
        received: collections.Counter[str] = collections.Counter(r.topic for r in records)
        for topic, count in received.items():
            self.metrics.records_in.labels(topic).inc(count)
        if time.monotonic() >= self._lag_due:
            self._lag_due = time.monotonic() + LAG_INTERVAL
            self._update_lag()

    def committed(
        self, offsets: Mapping[TopicPartition, int], seconds: float, error: str | None
    ) -> None:
        result = "ok" if error is None else "failed"
        self.metrics.commits.labels(result).inc()
        self.metrics.commit_duration.labels(result).observe(seconds)
        self._update_lag()

    def assignment(self, partitions: Sequence[TopicPartition], paused: int) -> None:
        self.metrics.assigned.set(len(partitions))
        self.metrics.paused.set(paused)
        for topic, partition in self._owned - set(partitions):
            try:
                self.metrics.lag.remove(topic, str(partition))
            except KeyError:
                pass
        self._owned = set(partitions)

    def held(self, record: kafka.Record) -> None:
        self.metrics.held.labels(record.topic).inc()

    def _update_lag(self) -> None:
        for (topic, partition), lag in self.member.lag().items():
            self.metrics.lag.labels(topic, str(partition)).set(lag)

    # ------------------------------------------------------------------ delivery

    async def _deliver(self, record: kafka.Record) -> bool:
        """One round of attempts on `record`: True when finished (accepted, dead-lettered or
        refused for good), False to hold it (the member tries again later)."""
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
        with self._tracer.start_as_current_span(
            f"{record.topic} process", context=parent, kind=trace.SpanKind.CONSUMER,
            attributes=attributes,
        ):  # fmt: skip
            outcome = await self._round(event)
        if outcome is None:
            return False
        self.metrics.records_out.labels(record.topic, outcome).inc()
        return True

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
