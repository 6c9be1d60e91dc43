"""Metrics of the channel dispatcher, on a registry passed in.

Labels are bounded: HTTP status codes the ingress answers, result, status class, destination
kind (subscriber|reply|dead_letter), the channel's namespace for the Knative names. Never
channel names, event types, ids or URLs (knative/serving#11248, eventing-kafka-broker#4672).

Knative-compatible names (the IMC dispatcher's stats reporter, release-1.18): `event_count`
and `event_dispatch_latencies` (milliseconds) with `namespace_name`, `response_code`,
`response_code_class` (and `event_dispatch_latencies` without `response_code`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

from kevents import delivery
from kevents import metrics as kevents_metrics

DESTINATIONS = ("subscriber", "reply", "dead_letter")
SOJOURN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""Seconds an event waited in a subscriber's backlog: around the millisecond target, up to
the count bound's tens of seconds."""
KNATIVE_LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
"""Knative's Buckets125(1, 10000) for `event_dispatch_latencies`, milliseconds."""


class _EventCount:
    """`event_count` exactly as Knative names it (prometheus_client would add `_total`)."""

    LABELS = ("namespace_name", "response_code", "response_code_class")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str, str], float] = {}

    def inc(self, labels: tuple[str, str, str]) -> None:
        with self._lock:
            self._series[labels] = self._series.get(labels, 0.0) + 1.0

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot = dict(self._series)
        family = Metric("event_count", "Number of events dispatched (Knative name)", "untyped")
        for labels, value in snapshot.items():
            family.add_sample("event_count", dict(zip(self.LABELS, labels, strict=True)), value)
        yield family


class DispatcherMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "kevents_dispatcher_events_received",
            "Requests to the channel ingress, by result (accepted|rejected) and answered code",
            ["result", "response_code"],
            registry=registry,
        )
        self.dispatched = Counter(
            "kevents_dispatcher_events_dispatched",
            "Finished deliveries, by destination kind, result and response status class",
            ["destination", "result", "response_code_class"],
            registry=registry,
        )
        self.duration = Histogram(
            "kevents_dispatcher_dispatch_duration_seconds",
            "Seconds from the first attempt to the outcome of one delivery, retries included",
            ["destination"],
            buckets=kevents_metrics.DURATION_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "kevents_dispatcher_retries",
            "Retry attempts made, by destination kind",
            ["destination"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "kevents_dispatcher_queue_depth",
            "Events accepted and not yet delivered to every subscriber",
            registry=registry,
        )
        self.queue_bytes = Gauge(
            "kevents_dispatcher_queue_bytes",
            "Body bytes of the events counted in kevents_dispatcher_queue_depth",
            registry=registry,
        )
        self.lost = Counter(
            "kevents_events_lost",
            "Deliveries given up (no dead-letter sink or it failed too, shutdown), by reason",
            ["reason"],
            registry=registry,
        )
        self.sojourn = Histogram(
            "kevents_dispatcher_sojourn_seconds",
            "Seconds events waited in a subscriber's backlog (behind its in-flight limit) "
            "before their delivery started; events that started at once are not observed",
            buckets=SOJOURN_BUCKETS,
            registry=registry,
        )
        self.refused = Counter(
            "kevents_dispatcher_refused",
            "Events an asynchronous channel refused (429) because a subscriber's events "
            "already waited longer than the sojourn target (reason over_target)",
            ["reason"],
            registry=registry,
        )
        self.refused_over_target = self.refused.labels("over_target")
        self.broker_received = Counter(
            "kevents_broker_events_received",
            "Requests to the broker ingress, by result (accepted|rejected) and answered code",
            ["result", "response_code"],
            registry=registry,
        )
        self.filtered = Counter(
            "kevents_broker_filter_events",
            "Events the broker filter evaluated for a Trigger, by result "
            "(matched|unmatched|not_servable)",
            ["result"],
            registry=registry,
        )
        self.filtered_matched = self.filtered.labels("matched")
        self.filtered_unmatched = self.filtered.labels("unmatched")
        self.replies_dropped = Counter(
            "kevents_broker_replies_dropped",
            "Subscriber replies not sent back into the broker, by reason (ttl_exhausted)",
            ["reason"],
            registry=registry,
        )
        self.channels = Gauge(
            "kevents_dispatcher_channels", "Channels served by this process", registry=registry
        )
        self.latency_ms = Histogram(
            "event_dispatch_latencies",
            "Time spent dispatching an event to a destination, ms (Knative name)",
            ["namespace_name", "response_code_class"],
            buckets=KNATIVE_LATENCY_BUCKETS_MS,
            registry=registry,
        )
        self._event_count = _EventCount()
        registry.register(self._event_count)
        # Label children are looked up once: the hot path only increments and observes.
        self._received: dict[int, Counter] = {}
        self._broker_received: dict[int, Counter] = {}
        self._delivery: dict[tuple[str, str, str, bool], _DeliverySeries] = {}

    def track_queue(self, depth: Callable[[], float], size: Callable[[], float]) -> None:
        """Read the queue gauges at scrape time instead of setting them per event."""
        self.queue_depth.set_function(depth)
        self.queue_bytes.set_function(size)

    def answered(self, code: int) -> None:
        """One answer of the channel ingress."""
        _count_answer(self._received, self.received, code)

    def broker_answered(self, code: int) -> None:
        """One answer of the broker ingress."""
        _count_answer(self._broker_received, self.broker_received, code)

    def observe(self, destination: str, namespace: str, result: delivery.DeliveryResult) -> None:
        """Record one finished delivery (all its attempts)."""
        status_class = result.status_class
        code = str(result.status) if result.status is not None else ""
        key = (destination, namespace, code, result.ok)
        series = self._delivery.get(key)
        if series is None:
            series = self._delivery[key] = self._series(key, status_class)
        series.dispatched.inc()
        series.duration.observe(result.duration)
        series.latency_ms.observe(result.duration * 1000.0)
        if result.attempts > 1:
            series.retries.inc(result.attempts - 1)
        self._event_count.inc(series.event_count)

    def _series(self, key: tuple[str, str, str, bool], status_class: str) -> _DeliverySeries:
        destination, namespace, code, ok = key
        return _DeliverySeries(
            dispatched=self.dispatched.labels(
                destination, "delivered" if ok else "failed", status_class
            ),
            duration=self.duration.labels(destination),
            retries=self.retries.labels(destination),
            latency_ms=self.latency_ms.labels(namespace, status_class),
            event_count=(namespace, code, status_class),
        )


def _count_answer(children: dict[int, Counter], counter: Counter, code: int) -> None:
    child = children.get(code)
    if child is None:
        result = "accepted" if code == 202 else "rejected"
        child = children[code] = counter.labels(result, str(code))
    child.inc()


@dataclasses.dataclass(frozen=True, slots=True)
class _DeliverySeries:
    """The label children one kind of finished delivery updates (bounded like its labels)."""

    dispatched: Counter
    duration: Histogram
    retries: Counter
    latency_ms: Histogram
    event_count: tuple[str, str, str]
