"""Metrics of the KafkaSource adapter (deliveries themselves: `kevents.metrics.SenderMetrics`).

Labels are bounded: `topic` by the source's topics, `partition` by their partition counts,
`result` by the fixed outcomes below. Never a record key, offset or URL.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: a local broker commits in about a millisecond, a loaded remote one in tens."""

RESULTS = ("delivered", "dead_lettered", "dropped")
"""delivered: the sink accepted it; dead_lettered: the dead-letter sink did; dropped: the
sink refused it for good (non-retryable status) and there is no dead-letter sink."""


class SourceMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records_in = Counter(
            "kevents_kafkasource_records_received",
            "Records fetched from Kafka, by topic (redeliveries after a restart included)",
            ["topic"],
            registry=registry,
        )
        self.records_out = Counter(
            "kevents_kafkasource_records_finished",
            "Records whose delivery finished, by topic and result "
            "(delivered|dead_lettered|dropped); their offsets may be committed",
            ["topic", "result"],
            registry=registry,
        )
        self.held = Counter(
            "kevents_kafkasource_record_holds",
            "Rounds of attempts that failed and were tried again later instead of dropping "
            "the record (sink or dead-letter sink unavailable), by topic",
            ["topic"],
            registry=registry,
        )
        self.lag = Gauge(
            "kevents_kafkasource_consumer_lag",
            "Records between the committed position and the partition's end (high watermark), "
            "by topic and partition, for the partitions this consumer owns",
            ["topic", "partition"],
            registry=registry,
        )
        self.commit_duration = Histogram(
            "kevents_kafkasource_commit_duration_seconds",
            "Seconds one offset commit took, by result (ok|failed)",
            ["result"],
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        self.commits = Counter(
            "kevents_kafkasource_commits",
            "Offset commits, by result (ok|failed)",
            ["result"],
            registry=registry,
        )
        self.paused = Gauge(
            "kevents_kafkasource_paused_partitions",
            "Partitions paused because their backlog is full (the sink is slower than Kafka)",
            registry=registry,
        )
        self.assigned = Gauge(
            "kevents_kafkasource_assigned_partitions",
            "Partitions of the consumer group assigned to this consumer",
            registry=registry,
        )
