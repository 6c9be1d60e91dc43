"""Metrics of the PingSource adapter (sends by result: kevents.metrics.SenderMetrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENESS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
"""Seconds. Millisecond resolution where a healthy adapter lives; up to a minute for a
catch-up after failover."""

STATES = ("scheduled", "no_sink", "invalid")


class PingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.ticks = Counter(
            "kevents_ping_ticks_fired",
            "Ticks fired (one event handed to the sender per source and tick)",
            registry=registry,
        )
        self.lateness = Histogram(
            "kevents_ping_tick_lateness_seconds",
            "Seconds between a tick's scheduled instant (plus its jitter) and its send start",
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self.missed = Counter(
            "kevents_ping_ticks_missed",
            "Ticks not fired, by reason (outside_catchup|queue_full)",
            ["reason"],
            registry=registry,
        )
        self.sources = Gauge(
            "kevents_ping_sources",
            "PingSources known to the adapter, by state (scheduled|no_sink|invalid)",
            ["state"],
            registry=registry,
        )
        self.leader = Gauge(
            "kevents_ping_leader",
            "1 while this replica holds the Lease and fires ticks, else 0",
            registry=registry,
        )
        for state in STATES:
            self.sources.labels(state).set(0)
