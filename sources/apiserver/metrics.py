"""Metrics of the ApiServerSource adapter (watch health: kevents.informer; sends:
kevents.metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class SourceMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
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
        self.checkpoint_writes = Counter(
            "kevents_apiserver_checkpoint_writes",
            "Writes of the delivered-position checkpoint, by result (ok|failed)",
            ["result"],
            registry=registry,
        )
        self.unrecoverable = Counter(
            "kevents_apiserver_unrecoverable",
            "Starts or resumes where changes made while the adapter was down could not all be "
            "recovered, by reason (expired: only the difference was emitted; forbidden, "
            "unreadable, too_large: no usable checkpoint)",
            ["reason"],
            registry=registry,
        )
