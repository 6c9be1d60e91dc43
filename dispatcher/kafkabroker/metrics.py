"""Metrics of the Kafka data plane's consumer groups, on a registry passed in.

Labels are bounded: `kind` (`trigger`: a Kafka Broker's Trigger; `channel`: a KafkaChannel
subscriber) and a commit `result` (`ok`, `failed`). Never group names, topics or partitions
(one per Broker, Trigger or Subscription: unbounded). Deliveries themselves are counted by
the courier's `kevents_dispatcher_*` family, as for the in-memory channels; the ingress by
`kevents_kafkasink_*` (the same ingress class).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kevents import consumergroup, kafka

KINDS = ("trigger", "channel")
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds one synchronous offset commit takes: milliseconds on a healthy cluster, seconds
while the group coordinator moves."""


class GroupMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "kevents_kafka_dispatcher_records_received",
            "Records fetched from Kafka by the consumer groups, by kind (trigger|channel)",
            ["kind"],
            registry=registry,
        )
        self.commits = Counter(
            "kevents_kafka_dispatcher_commits",
            "Offset commits, by kind and result (ok|failed)",
            ["kind", "result"],
            registry=registry,
        )
        self.commit_duration = Histogram(
            "kevents_kafka_dispatcher_commit_duration_seconds",
            "Seconds per offset commit, by kind and result",
            ["kind", "result"],
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        self.holds = Counter(
            "kevents_kafka_dispatcher_record_holds",
            "Records held for a later round (their dead letter sink failed too), by kind",
            ["kind"],
            registry=registry,
        )
        self.assigned = Gauge(
            "kevents_kafka_dispatcher_assigned_partitions",
            "Partitions this process consumes, summed over its groups, by kind",
            ["kind"],
            registry=registry,
        )
        self.groups = Gauge(
            "kevents_kafka_dispatcher_consumer_groups",
            "Consumer groups this process is a member of, by kind",
            ["kind"],
            registry=registry,
        )
        self._assigned: dict[tuple[str, ...], int] = {}
        for kind in KINDS:
            self.received.labels(kind)
            self.assigned.labels(kind).set(0)
            self.groups.labels(kind).set(0)

    def observer(self, key: tuple[str, ...]) -> consumergroup.Observer:
        """The observer of the member for `key` (its first element is the kind)."""
        return _Observer(self, key)

    def forget(self, key: tuple[str, ...]) -> None:
        """The member for `key` stopped."""
        self._assigned.pop(key, None)
        self._sum(key[0])

    def set_assigned(self, key: tuple[str, ...], partitions: int) -> None:
        self._assigned[key] = partitions
        self._sum(key[0])

    def _sum(self, kind: str) -> None:
        owned = [n for k, n in self._assigned.items() if k[0] == kind]
        self.assigned.labels(kind).set(sum(owned))

    def count_groups(self, keys: Sequence[tuple[str, ...]]) -> None:
        for kind in KINDS:
            self.groups.labels(kind).set(sum(1 for k in keys if k[0] == kind))


class _Observer(consumergroup.Observer):
    def __init__(self, metrics: GroupMetrics, key: tuple[str, ...]) -> None:
        self._metrics = metrics
        self._key = key
        self._kind = key[0]

    def polled(self, records: Sequence[kafka.Record], problem: str | None) -> None:
        if records:
            self._metrics.received.labels(self._kind).inc(len(records))

    def committed(
        self,
        offsets: Mapping[consumergroup.TopicPartition, int],
        seconds: float,
        error: str | None,
    ) -> None:
        result = "ok" if error is None else "failed"
        self._metrics.commits.labels(self._kind, result).inc()
        self._metrics.commit_duration.labels(self._kind, result).observe(seconds)

    def assignment(self, partitions: Sequence[consumergroup.TopicPartition], paused: int) -> None:
        self._metrics.set_assigned(self._key, len(partitions))

    def held(self, record: kafka.Record) -> None:
        self._metrics.holds.labels(self._kind).inc()
