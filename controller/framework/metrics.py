"""Prometheus metrics of the controller, on a registry passed in.

Labels are bounded: `kind` (one per reconciler), `result`, `resource` (watched plurals),
`reason` (fixed set). Never object names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds: a reconcile is a handful of apiserver round trips (ms) up to slow SARs."""


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.reconciles = Counter(
            "kevents_controller_reconciles_total",
            "Reconciles by kind and result (success, error).",
            ["kind", "result"],
            registry=registry,
        )
        self.reconcile_seconds = Histogram(
            "kevents_controller_reconcile_duration_seconds",
            "Time one reconcile took.",
            ["kind"],
            buckets=RECONCILE_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "kevents_controller_workqueue_depth",
            "Keys waiting in the work queue.",
            ["kind"],
            registry=registry,
        )
        self.watch_restarts = Counter(
            "kevents_controller_watch_restarts_total",
            "Watches restarted, by reason (ended, expired, inactive, forbidden, error).",
            ["reason"],
            registry=registry,
        )
        self.leader = Gauge(
            "kevents_controller_leader",
            "1 while this replica holds the leader Lease.",
            registry=registry,
        )
