"""Prometheus metrics of the shared runtime, on a registry passed in (never the global one).

Labels are bounded: result, status class, status code, namespace/name of the *source object*
(one per adapter), queue name. Never event ids, types, subjects or URLs.

Two families exist side by side:
- `kevents_*`: our names, with `_total`/`_seconds` suffixes.
- Knative-compatible `event_count` and `retry_event_count` (the source stats reporter of
  `knative/eventing` <= 1.18), emitted with their exact names so existing dashboards work.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import exposition as exposition_module
from prometheus_client.metrics_core import Metric

from kevents import delivery, opserver

if TYPE_CHECKING:
    from aiohttp import web

DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
)  # fmt: skip
"""Seconds. Knative's OTel dispatch buckets, plus 30 s and 60 s because a delivery includes
its retries and backoff waits."""

_KNATIVE_LABELS = (
    "namespace_name",
    "name",
    "resource_group",
    "event_scheme",
    "response_code",
    "response_code_class",
)


class _KnativeCounters:
    """Exposes `event_count` / `retry_event_count` without prometheus_client's `_total`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[tuple[str, ...], float]] = {
            "event_count": {},
            "retry_event_count": {},
        }

    def inc(self, metric: str, labels: tuple[str, ...]) -> None:
        with self._lock:
            series = self._counts[metric]
            series[labels] = series.get(labels, 0.0) + 1.0

    def collect(self) -> Iterator[Metric]:
        helps = {
            "event_count": "Number of events sent (Knative-compatible name)",
            "retry_event_count": "Number of retries (Knative-compatible name)",
        }
        with self._lock:
            snapshot = {name: dict(series) for name, series in self._counts.items()}
        for name, series in snapshot.items():
            # "untyped" here, typed `counter` by `exposition` (prometheus_client would print
            # a counter's header as `<name>_total`, not the name Knative's dashboards query).
            family = Metric(name, helps[name], "untyped")
            for labels, value in series.items():
                family.add_sample(name, dict(zip(_KNATIVE_LABELS, labels, strict=True)), value)
            yield family


class SenderMetrics:
    """Metrics of `sender.Sender` and `sendqueue.SendQueue` for one process."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        namespace: str = "",
        name: str = "",
        resource_group: str = "",
    ) -> None:
        self._static = (namespace, name, resource_group)
        self.events_sent = Counter(
            "kevents_events_sent",
            "Events whose delivery finished, by result (delivered|failed) and status class",
            ["result", "response_code_class"],
            registry=registry,
        )
        self.retries = Counter(
            "kevents_send_retries",
            "Retry attempts made, by the status class that caused them",
            ["response_code_class"],
            registry=registry,
        )
        self.duration = Histogram(
            "kevents_delivery_duration_seconds",
            "Seconds from first attempt to final outcome of one delivery, retries included",
            ["result"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "kevents_send_queue_depth",
            "Events waiting in a send queue",
            ["queue"],
            registry=registry,
        )
        self.queue_rejected = Counter(
            "kevents_send_queue_rejected",
            "Events refused because the send queue was full or closed",
            ["queue", "reason"],
            registry=registry,
        )
        self.events_lost = Counter(
            "kevents_events_lost",
            "Events given up: retries exhausted, terminal refusal, or shutdown before delivery",
            ["reason"],
            registry=registry,
        )
        self._knative = _KnativeCounters()
        registry.register(self._knative)

    def observe(self, result: delivery.DeliveryResult, *, scheme: str) -> None:
        """Record one finished delivery."""
        outcome = "delivered" if result.ok else "failed"
        self.events_sent.labels(outcome, result.status_class).inc()
        self.duration.labels(outcome).observe(result.duration)
        code = str(result.status) if result.status is not None else ""
        self._knative.inc("event_count", (*self._static, scheme, code, result.status_class))

    def observe_retry(self, status: int | None, *, scheme: str) -> None:
        """Record one retry caused by a failed attempt with `status`."""
        status_class = "none" if status is None else f"{status // 100}xx"
        self.retries.labels(status_class).inc()
        code = str(status) if status is not None else ""
        self._knative.inc("retry_event_count", (*self._static, scheme, code, status_class))

    def lost(self, reason: str, count: int = 1) -> None:
        """Record events given up for `reason` (bounded: retries_exhausted|refused|shutdown)."""
        self.events_lost.labels(reason).inc(count)


class HTTPServerMetrics:
    """What `kevents.httpserver.Server` refused or closed, by listener and bounded reason."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests_refused = Counter(
            "kevents_http_requests_refused",
            "Requests answered by the HTTP layer before any handler: malformed HTTP by reason "
            "(bad_request_line, bad_header, line_too_long, ...), or a handler's error",
            ["server", "reason"],
            registry=registry,
        )
        self.connections_closed = Counter(
            "kevents_http_connections_closed",
            "Connections the server closed, by reason (header_timeout|idle_timeout|half_closed)",
            ["server", "reason"],
            registry=registry,
        )


KNATIVE_COUNTERS = ("event_count", "retry_event_count")
"""Knative's counter names, exported as counters under exactly these names (its OpenCensus
exporter did so: `# TYPE event_count counter`, sample `event_count`), so dashboards and
`rate()` queries written for Knative work. prometheus_client cannot print a counter without
`_total`, so their collectors yield them untyped and `exposition` types them. promtool's
naming lint flags the two names (no `_total`, a `_count` suffix): they are Knative's; the
`kevents_*_total` counters carry the same counts under conventional names."""


def exposition(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format (0.0.4) of `registry`, Knative's counters typed `counter`."""
    body = exposition_module.generate_latest(registry)
    for name in KNATIVE_COUNTERS:
        body = body.replace(f"\n# TYPE {name} untyped\n".encode(),
                            f"\n# TYPE {name} counter\n".encode())  # fmt: skip
    return body


def answer(registry: CollectorRegistry) -> opserver.Answer:
    """The `/metrics` answer: `exposition(registry)`, typed as prometheus_client types it."""
    return opserver.Answer(200, exposition(registry), exposition_module.CONTENT_TYPE_LATEST)


def routes(registry: CollectorRegistry) -> dict[str, opserver.Route]:
    """`/metrics` for `registry` (served by `kevents.endpoints`)."""
    return {"/metrics": functools.partial(answer, registry)}


def make_app(registry: CollectorRegistry) -> web.Application:
    """An aiohttp app serving `registry` at `/metrics`, for the deployables that serve
    aiohttp apps anyway (the dispatcher's workers, the display); aiohttp is imported here
    only: `kevents.endpoints` serves `routes()` without it."""
    from aiohttp import web

    async def serve(request: web.Request) -> web.Response:
        served = answer(registry)
        return web.Response(body=served.body, headers={"Content-Type": served.content_type})

    app = web.Application()
    app.router.add_get("/metrics", serve)
    return app


class KubeEventMetrics:
    """Kubernetes Events recorded by `kevents.kubeevents.Recorder`, by bounded outcome."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "kevents_kubernetes_events",
            "Kubernetes Events by outcome: created, updated (count patched), filtered (spam "
            "filter), dropped (queue full), namespace_terminating (its namespace is being "
            "deleted), failed (the apiserver refused or was unreachable)",
            ["outcome"],
            registry=registry,
        )
