"""The KafkaSink ingress's settings, read from the environment once (every bad variable
reported by name)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from kevents import settings, tracing

COMPONENT = "kafka-sink-ingress"
"""Service name of its spans and its Deployment's name (Knative's `kafka-sink-receiver`)."""


@dataclasses.dataclass(frozen=True, slots=True)
class KafkaSinkSettings:
    ingress_port: int = 8000
    """KEVENTS_INGRESS_PORT: where events arrive (the `kafka-sink-ingress` Service targets
    it). 8000 because 8080 is the probes port of every kevents process."""
    ingress_host: str = "0.0.0.0"
    """KEVENTS_INGRESS_HOST: all interfaces so the Service reaches the pod IP."""
    ingress_header_timeout: float = 10.0
    """KEVENTS_INGRESS_HEADER_TIMEOUT seconds from a new connection (or the next request's
    first byte) to the end of its headers: as the dispatcher's ingress."""
    ingress_idle_timeout: float = 120.0
    """KEVENTS_INGRESS_IDLE_TIMEOUT seconds a kept-alive connection may wait for its next
    request: above Go's and our own pools' 90 s idle time."""
    ingress_body_timeout: float = 30.0
    """KEVENTS_INGRESS_BODY_TIMEOUT seconds to receive one body (else 408)."""
    max_body_size: int = 4 * 1024 * 1024
    """KEVENTS_MAX_BODY_SIZE bytes of one request (larger: 413). 4 MiB is below Kafka's
    default `message.max.bytes` (~1 MiB is the broker's default: a larger record is refused
    by Kafka and answered 400 with its reason)."""
    produce_timeout: float = 15.0
    """KEVENTS_PRODUCE_TIMEOUT seconds an event may wait for Kafka's acknowledgement
    (`acks=all`, librdkafka's retries included) before the answer is 503: a producer
    retries elsewhere or later. 15 s rides out a leader election (seconds) and stays under
    the 30 s request timeouts senders commonly use."""
    produce_target: float = 1.0
    """KEVENTS_PRODUCE_TARGET seconds an accepted event may wait for Kafka's acknowledgement
    before new events for the same target are refused (429 + Retry-After) instead of queued:
    while the oldest event in flight has waited longer and acknowledgements are not coming
    fast (none within this time, or the latest one also waited longer). Latency under overload
    is then bounded by admission, not by `produce_timeout`. 0 turns it off."""
    secret_recheck: float = 60.0
    """KEVENTS_SECRET_RECHECK seconds between reads of a sink's auth Secret while the sink
    is used: the ingress may only `get` Secrets (no watch), so a rotated password is picked
    up within this time, or at once when the KafkaSink changes."""
    retry_after: int = 1
    """Seconds in Retry-After with a 503 (Kafka unreachable, or draining)."""
    metrics_port: int = 9090
    """METRICS_PROMETHEUS_PORT, 1024-65535; 9090 is knative/pkg's default."""
    metrics_host: str = "0.0.0.0"
    """METRICS_PROMETHEUS_HOST; all interfaces so Prometheus can scrape the pod IP."""
    probes_port: int = 8080
    """KEVENTS_PROBES_PORT: `/health` and `/readiness`."""
    probes_host: str = "0.0.0.0"
    """KEVENTS_PROBES_HOST; all interfaces so the kubelet reaches the pod IP."""
    grace: float = 25.0
    """KEVENTS_GRACE seconds to finish events in flight at SIGTERM; fits Kubernetes' 30 s."""
    tracing_config: tracing.TracingConfig = dataclasses.field(default_factory=tracing.TracingConfig)
    """K_TRACING_CONFIG or KEVENTS_TRACING_DIR (config-tracing); backend none by default."""
    log_format: str = "json"
    """KEVENTS_LOG_FORMAT json|text; json because pods' logs are read by collectors."""
    log_level: str = "INFO"
    """KEVENTS_LOG_LEVEL; INFO shows state changes, never per-event lines."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSinkSettings:
        reader = settings.EnvReader(environ)
        result = cls(
            ingress_port=reader.integer("KEVENTS_INGRESS_PORT", 8000, minimum=0, maximum=65535),
            ingress_host=reader.string("KEVENTS_INGRESS_HOST", "0.0.0.0"),
            ingress_header_timeout=reader.number(
                "KEVENTS_INGRESS_HEADER_TIMEOUT", 10.0, minimum=0.001, maximum=3600.0
            ),
            ingress_idle_timeout=reader.number(
                "KEVENTS_INGRESS_IDLE_TIMEOUT", 120.0, minimum=0.001, maximum=86400.0
            ),
            ingress_body_timeout=reader.number(
                "KEVENTS_INGRESS_BODY_TIMEOUT", 30.0, minimum=0.001, maximum=3600.0
            ),
            max_body_size=reader.integer("KEVENTS_MAX_BODY_SIZE", 4 * 1024 * 1024, minimum=1024),
            produce_timeout=reader.number(
                "KEVENTS_PRODUCE_TIMEOUT", 15.0, minimum=0.1, maximum=3600.0
            ),
            produce_target=reader.number(
                "KEVENTS_PRODUCE_TARGET", 1.0, minimum=0.0, maximum=3600.0
            ),
            secret_recheck=reader.number(
                "KEVENTS_SECRET_RECHECK", 60.0, minimum=1.0, maximum=86400.0
            ),
            metrics_port=reader.integer(
                "METRICS_PROMETHEUS_PORT", 9090, minimum=1024, maximum=65535
            ),
            metrics_host=reader.string("METRICS_PROMETHEUS_HOST", "0.0.0.0"),
            probes_port=reader.integer("KEVENTS_PROBES_PORT", 8080, minimum=1, maximum=65535),
            probes_host=reader.string("KEVENTS_PROBES_HOST", "0.0.0.0"),
            grace=reader.number("KEVENTS_GRACE", 25.0, minimum=0.0, maximum=3600.0),
            tracing_config=reader.tracing_config(),
            log_format=reader.choice("KEVENTS_LOG_FORMAT", "json", settings.LOG_FORMATS),
            log_level=reader.choice("KEVENTS_LOG_LEVEL", "INFO", settings.LOG_LEVELS, upper=True),
        )
        reader.check()
        return result
