"""Settings of the PingSource adapter, read from the environment once.

The multi-tenant adapter has no `K_SINK`: each PingSource carries its own resolved sink.
"""

from __future__ import annotations

import dataclasses
import socket
import uuid
from collections.abc import Mapping

from kevents import settings, tracing


@dataclasses.dataclass(frozen=True, slots=True)
class PingSettings:
    jitter: float = 0.0
    """PING_JITTER_SECONDS (0-0.999): fixed per-source offset spreading a tick's burst; 0
    fires on the second (Knative always adds 0-500 ms; we report lateness instead)."""
    catchup: float = 60.0
    """PING_CATCHUP_SECONDS (0-3600): missed ticks this recent still fire after a failover;
    a minute covers a lease handover with margin, longer outages are not replayed."""
    workers: int = 64
    """PING_WORKERS (1-1024): concurrent sends; enough to drain a 10k-source burst quickly."""
    sink_timeout: float | None = None
    """K_SINK_TIMEOUT seconds per attempt; unset = no timeout, as Knative."""
    leader_election: bool = True
    """KEVENTS_LEADER_ELECTION: off only for a single replica (then nothing is recorded)."""
    lease_namespace: str = "kevents-system"
    """POD_NAMESPACE, else SYSTEM_NAMESPACE: where the Lease lives (the adapter's own)."""
    lease_name: str = "kevents-ping-adapter"
    """KEVENTS_LEASE_NAME: one Lease per adapter Deployment."""
    identity: str = ""
    """POD_NAME (unique per replica), else host name plus a random suffix."""
    lease_duration: float = 15.0
    """KEVENTS_LEASE_DURATION seconds; client-go's default: failover within ~17 s."""
    renew_deadline: float = 10.0
    """KEVENTS_LEASE_RENEW_DEADLINE seconds; the leader stops firing after this without a
    renewal, 5 s before anyone may take over."""
    retry_period: float = 2.0
    """KEVENTS_LEASE_RETRY_PERIOD seconds between renewals and acquisition attempts."""
    tracing_config: tracing.TracingConfig = dataclasses.field(default_factory=tracing.TracingConfig)
    """K_TRACING_CONFIG; tracing is opt-in."""
    log_format: str = "json"
    """KEVENTS_LOG_FORMAT json|text; json for log collectors."""
    log_level: str = "INFO"
    """KEVENTS_LOG_LEVEL; INFO shows schedule changes and leadership."""
    metrics_port: int = 9090
    """METRICS_PROMETHEUS_PORT; knative/pkg's default."""
    metrics_host: str = "0.0.0.0"
    """METRICS_PROMETHEUS_HOST; all interfaces so Prometheus can scrape the pod IP."""
    probes_port: int = 8080
    """KEVENTS_PROBES_PORT; where Knative adapters serve /health and /readiness."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PingSettings:
        reader = settings.EnvReader(environ)
        identity = reader.string("POD_NAME") or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        timeout = reader.integer("K_SINK_TIMEOUT", -1)
        result = cls(
            jitter=reader.number("PING_JITTER_SECONDS", 0.0, minimum=0, maximum=0.999),
            catchup=reader.number("PING_CATCHUP_SECONDS", 60.0, minimum=0, maximum=3600),
            workers=reader.integer("PING_WORKERS", 64, minimum=1, maximum=1024),
            sink_timeout=float(timeout) if timeout > 0 else None,
            leader_election=reader.boolean("KEVENTS_LEADER_ELECTION", True),
            lease_namespace=reader.string(
                "POD_NAMESPACE", reader.string("SYSTEM_NAMESPACE", "kevents-system")
            ),
            lease_name=reader.string("KEVENTS_LEASE_NAME", "kevents-ping-adapter"),
            identity=identity,
            lease_duration=reader.number("KEVENTS_LEASE_DURATION", 15.0, minimum=1, maximum=300),
            renew_deadline=reader.number(
                "KEVENTS_LEASE_RENEW_DEADLINE", 10.0, minimum=0.5, maximum=300
            ),
            retry_period=reader.number("KEVENTS_LEASE_RETRY_PERIOD", 2.0, minimum=0.1, maximum=60),
            tracing_config=reader.tracing_config(),
            log_format=reader.choice("KEVENTS_LOG_FORMAT", "json", settings.LOG_FORMATS),
            log_level=reader.choice("KEVENTS_LOG_LEVEL", "INFO", settings.LOG_LEVELS, upper=True),
            metrics_port=reader.integer(
                "METRICS_PROMETHEUS_PORT", 9090, minimum=1024, maximum=65535
            ),
            metrics_host=reader.string("METRICS_PROMETHEUS_HOST", "0.0.0.0"),
            probes_port=reader.integer("KEVENTS_PROBES_PORT", 8080, minimum=1, maximum=65535),
        )
        if not result.retry_period < result.renew_deadline < result.lease_duration:
            reader.problem(
                "KEVENTS_LEASE_RENEW_DEADLINE",
                "needs KEVENTS_LEASE_RETRY_PERIOD < renew deadline < KEVENTS_LEASE_DURATION",
            )
        reader.check()
        return result
