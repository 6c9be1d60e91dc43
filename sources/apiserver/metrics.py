"""Metrics of the ApiServerSource adapter's watches (the sender's live in kevents.metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class WatchMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.watches_active = Gauge(
            "kevents_apiserver_watches_active",
            "Watches currently running (one per resource and namespace)",
            registry=registry,
        )
        self.restarts = Counter(
            "kevents_apiserver_watch_restarts",
            "Watch restarts by reason (ended|expired|inactive|forbidden|error)",
            ["reason"],
            registry=registry,
        )
        self.duplicates_suppressed = Counter(
            "kevents_apiserver_duplicates_suppressed",
            "Watch events dropped because the object's resourceVersion had not changed",
            registry=registry,
        )
        self.sent = Counter(
            "kevents_apiserver_events_sent",
            "Events whose delivery finished, by event type and result (delivered|failed)",
            ["type", "result"],
            registry=registry,
        )
        self.changes = Counter(
            "kevents_apiserver_changes",
            "Object changes turned into events, by event type",
            ["type"],
            registry=registry,
        )
