"""Metrics of the KafkaSink ingress, on a registry passed in.

Labels are bounded: the HTTP code answered, a result (`stored`, `refused`, `unreachable`,
`timeout`, `error`) and the sink's namespace for Knative's name. Never sink names, topics,
event types or ids (eventing-kafka-broker#4672 removed such labels for cardinality).

Knative's receiver exports `event_count` (namespace_name, response_code,
response_code_class) and `event_dispatch_latencies` in milliseconds; ours are
`kevents_kafkasink_events_total` with the same labels and the produce latency in seconds.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

RESULTS = ("stored", "refused", "unreachable", "timeout", "error")
"""Outcomes of one produce: acknowledged by Kafka; refused by the broker (record too large,
unknown topic, not authorized: the event is bad or the sink misconfigured); no broker
reachable; no acknowledgement within the produce timeout; anything else."""

PRODUCE_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
"""Seconds from handing a record to the producer to Kafka's acknowledgement: ~1-10 ms on a
healthy cluster with acks=all, seconds through a leader election, the timeout at most."""


class KafkaSinkMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.answered = Counter(
            "kevents_kafkasink_requests",
            "Requests to the KafkaSink ingress, by answered HTTP code",
            ["response_code"],
            registry=registry,
        )
        self.records = Counter(
            "kevents_kafkasink_records_out",
            "Records produced to Kafka, by result (stored|refused|unreachable|timeout|error)",
            ["result"],
            registry=registry,
        )
        self.produce_latency = Histogram(
            "kevents_kafkasink_produce_duration_seconds",
            "Seconds from handing one record to the producer to Kafka's answer (acks=all)",
            ["result"],
            buckets=PRODUCE_BUCKETS,
            registry=registry,
        )
        self.bytes_out = Counter(
            "kevents_kafkasink_record_bytes",
            "Bytes of record values acknowledged by Kafka",
            registry=registry,
        )
        self.sinks = Gauge(
            "kevents_kafkasink_sinks",
            "KafkaSinks this ingress serves",
            registry=registry,
        )
        self.producers = Gauge(
            "kevents_kafkasink_producers",
            "Kafka producers open (one per distinct bootstrap servers and credentials)",
            registry=registry,
        )
        self.event_count = Counter(
            "kevents_kafkasink_events",
            "Events answered, by sink namespace and response code (Knative's event_count)",
            ["namespace_name", "response_code", "response_code_class"],
            registry=registry,
        )

    def answer(self, namespace: str, status: int) -> None:
        code = str(status)
        self.answered.labels(code).inc()
        if namespace:
            self.event_count.labels(namespace, code, f"{status // 100}xx").inc()

    def produced(self, result: str, seconds: float, size: int = 0) -> None:
        self.records.labels(result).inc()
        self.produce_latency.labels(result).observe(seconds)
        if result == "stored":
            self.bytes_out.inc(size)
