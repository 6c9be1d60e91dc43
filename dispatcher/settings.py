"""The dispatcher's settings, read from the environment once (every bad variable reported).

`python -m dispatcher --workers N` overrides `KEVENTS_DISPATCHER_WORKERS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from dispatcher import workers as workers_module
from kevents import settings, tracing

COMPONENT = "imc-dispatcher"


@dataclasses.dataclass(frozen=True, slots=True)
class DispatcherSettings:
    ingress_port: int = 8000
    """KEVENTS_INGRESS_PORT: where channel traffic arrives (the `<name>-kn-channel` Services
    target it). 8000 because 8080 is the probes port of every kevents process."""
    broker_ingress_port: int = 8001
    """KEVENTS_BROKER_INGRESS_PORT: the multi-tenant broker ingress (`POST /<ns>/<broker>`),
    behind the `broker-ingress` Service; next to the channel port, in the same process."""
    broker_max_ttl: int = 255
    """MAX_TTL (Knative's variable): `knativebrokerttl` given to events entering a broker
    without one, and the most one may carry; each reply back into the broker is one hop."""
    ingress_header_timeout: float = 10.0
    """KEVENTS_INGRESS_HEADER_TIMEOUT seconds, on both ingress ports: from a new connection
    (or the first byte of the next request on a kept-alive one) to the end of the request's
    headers; a connection that sends nothing, or a header byte by byte, is closed after it.
    10 s is hundreds of round trips inside a cluster."""
    ingress_idle_timeout: float = 120.0
    """KEVENTS_INGRESS_IDLE_TIMEOUT seconds a kept-alive connection may wait for its next
    request. Longer than the idle time of Go's and our own client pools (90 s), so producers
    rarely send into a connection being closed; short enough that abandoned ones go."""
    ingress_body_timeout: float = 30.0
    """KEVENTS_INGRESS_BODY_TIMEOUT seconds to receive one request body, else 408 and the
    connection closed: a 4 MiB body (the default limit) at ~1 Mbit/s."""
    ingress_host: str = "0.0.0.0"
    """KEVENTS_INGRESS_HOST: all interfaces so the channel Services reach the pod IP."""
    metrics_port: int = 9090
    """METRICS_PROMETHEUS_PORT, 1024-65535; 9090 is knative/pkg's default. Worker process i
    (of `workers`) serves its own metrics on metrics_port + i."""
    metrics_host: str = "0.0.0.0"
    """METRICS_PROMETHEUS_HOST; all interfaces so Prometheus can scrape the pod IP."""
    probes_port: int = 8080
    """KEVENTS_PROBES_PORT; shared by the worker processes (SO_REUSEPORT)."""
    probes_host: str = "0.0.0.0"
    """KEVENTS_PROBES_HOST; all interfaces so the kubelet reaches the pod IP."""
    workers: int = 1
    """KEVENTS_DISPATCHER_WORKERS: processes sharing the ingress port with SO_REUSEPORT, each
    with its own channel informer; worker 0 serves all their metrics summed on
    `metrics_port` (`dispatcher.aggregation`). By default one per core of the pod's CPU limit
    (`dispatcher.workers.default_count`: a Python process uses one core), 1 without a limit."""
    queue_size: int = 10_000
    """KEVENTS_QUEUE_SIZE: events accepted (202) but not yet delivered to every subscriber,
    per process. Beyond it the ingress answers 429: memory stays bounded (knative PR#2361).
    10 000 is seconds of traffic at full speed; per channel, `subscriber_backlog` answers 429
    sooner."""
    queue_bytes: int = 128 * 1024 * 1024
    """KEVENTS_QUEUE_BYTES: the same bound in body bytes, so large events cannot exhaust
    memory before the count bound is reached. Each accepted body is held once (subscribers
    and retries share its bytes), so this counts what is alive. 128 MiB is a quarter of the
    Deployment's 512 Mi limit: the rest is the process itself (~70 MiB), bodies still being
    read (up to `max_body_size` each, twice while joined) and per-subscriber re-encodings
    (`delivery.format` other than the received mode); 10,000 typical 1 KiB events need 10 MiB.
    Raise it together with the pod's memory limit."""
    max_body_size: int = 4 * 1024 * 1024
    """KEVENTS_MAX_BODY_SIZE: bytes of one incoming request; larger ones get 413. 4 MiB is far
    above typical events and keeps one request from taking the queue's memory."""
    subscriber_concurrency: int = 64
    """KEVENTS_SUBSCRIBER_CONCURRENCY: requests in flight to one subscriber, per process. A
    slow subscriber gets at most this many, the rest wait in its backlog (knative#2666).
    64 keeps a loopback subscriber busy; lower it for fragile subscribers."""
    subscriber_backlog: int = 500
    """KEVENTS_SUBSCRIBER_BACKLOG: events waiting for one subscriber beyond its in-flight
    limit. When full, the channel answers 429 so a stuck subscriber cannot take the whole
    queue from other channels. 500 is ~0.1 s of a fast subscriber and ~0.5 s at ten
    subscribers per event: producers get 429 (and retry) before latency reaches seconds,
    which 2,000 allowed under a closed-loop load (bench/dispatcher.py)."""
    sojourn_target: float = 0.005
    """KEVENTS_SOJOURN_TARGET seconds an event of an asynchronous channel may wait in a
    subscriber's backlog: once the wait stays above it for `sojourn_interval`, the channel
    answers 429 until it drops (CoDel, RFC 8289; `dispatcher.lane`). 5 ms is CoDel's
    default: a few round trips to a loopback subscriber, so producers are pushed back long
    before the count bound (`subscriber_backlog`) lets events wait for seconds. 0 turns it
    off (only the count bounds refuse)."""
    sojourn_interval: float = 0.05
    """KEVENTS_SOJOURN_INTERVAL seconds the wait must stay above the target before admission
    refuses: bursts shorter than this are absorbed by the backlog. 50 ms (CoDel's 100 ms is
    sized for Internet round trips; a subscriber is a cluster hop away)."""
    drain_retry_after: int = 1
    """Seconds sent in Retry-After with 429 and with the 503 of a draining process: long
    enough for a retry to land on another replica, short enough to keep latency low."""
    grace: float = 25.0
    """KEVENTS_GRACE seconds to drain at SIGTERM; fits Kubernetes' default 30 s."""
    tracing_config: tracing.TracingConfig = dataclasses.field(default_factory=tracing.TracingConfig)
    """K_TRACING_CONFIG (config-tracing data as JSON); backend none by default (opt-in)."""
    log_format: str = "json"
    """KEVENTS_LOG_FORMAT json|text; json because pods' logs are read by collectors."""
    log_level: str = "INFO"
    """KEVENTS_LOG_LEVEL; INFO shows state changes, never per-event lines."""
    report_status: bool = True
    """KEVENTS_REPORT_STATUS: patch `status.subscribers` of the channels (worker 0 only)."""

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, workers: int | None = None
    ) -> DispatcherSettings:
        reader = settings.EnvReader(environ)
        result = cls(
            ingress_port=reader.integer("KEVENTS_INGRESS_PORT", 8000, minimum=0, maximum=65535),
            broker_ingress_port=reader.integer(
                "KEVENTS_BROKER_INGRESS_PORT", 8001, minimum=0, maximum=65535
            ),
            broker_max_ttl=reader.integer("MAX_TTL", 255, minimum=1, maximum=2**31 - 1),
            ingress_header_timeout=reader.number(
                "KEVENTS_INGRESS_HEADER_TIMEOUT", 10.0, minimum=0.001, maximum=3600.0
            ),
            ingress_idle_timeout=reader.number(
                "KEVENTS_INGRESS_IDLE_TIMEOUT", 120.0, minimum=0.001, maximum=86400.0
            ),
            ingress_body_timeout=reader.number(
                "KEVENTS_INGRESS_BODY_TIMEOUT", 30.0, minimum=0.001, maximum=3600.0
            ),
            ingress_host=reader.string("KEVENTS_INGRESS_HOST", "0.0.0.0"),
            metrics_port=reader.integer(
                "METRICS_PROMETHEUS_PORT", 9090, minimum=1024, maximum=65535
            ),
            metrics_host=reader.string("METRICS_PROMETHEUS_HOST", "0.0.0.0"),
            probes_port=reader.integer("KEVENTS_PROBES_PORT", 8080, minimum=1, maximum=65535),
            probes_host=reader.string("KEVENTS_PROBES_HOST", "0.0.0.0"),
            workers=workers
            if workers is not None
            else reader.integer(
                "KEVENTS_DISPATCHER_WORKERS", workers_module.default_count(), minimum=1, maximum=64
            ),
            queue_size=reader.integer("KEVENTS_QUEUE_SIZE", 10_000, minimum=1),
            queue_bytes=reader.integer("KEVENTS_QUEUE_BYTES", 128 * 1024 * 1024, minimum=1024),
            max_body_size=reader.integer("KEVENTS_MAX_BODY_SIZE", 4 * 1024 * 1024, minimum=1024),
            subscriber_concurrency=reader.integer(
                "KEVENTS_SUBSCRIBER_CONCURRENCY", 64, minimum=1, maximum=10_000
            ),
            subscriber_backlog=reader.integer("KEVENTS_SUBSCRIBER_BACKLOG", 500, minimum=0),
            sojourn_target=reader.number(
                "KEVENTS_SOJOURN_TARGET", 0.005, minimum=0.0, maximum=60.0
            ),
            sojourn_interval=reader.number(
                "KEVENTS_SOJOURN_INTERVAL", 0.05, minimum=0.001, maximum=60.0
            ),
            grace=reader.number("KEVENTS_GRACE", 25.0, minimum=0.0, maximum=3600.0),
            tracing_config=reader.tracing_config(),
            log_format=reader.choice("KEVENTS_LOG_FORMAT", "json", settings.LOG_FORMATS),
            log_level=reader.choice("KEVENTS_LOG_LEVEL", "INFO", settings.LOG_LEVELS, upper=True),
            report_status=reader.boolean("KEVENTS_REPORT_STATUS", True),
        )
        if workers is not None and not 1 <= workers <= 64:
            reader.problem("--workers", f"must be within [1, 64], got {workers}")
        if result.metrics_port + result.workers - 1 > 65535:
            reader.problem("METRICS_PROMETHEUS_PORT", "leaves no port for every worker process")
        reader.check()
        return result
