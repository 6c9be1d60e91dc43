"""Metrics of the GitHub receive adapter (sends to the sink: `kevents.metrics.SenderMetrics`).

Labels are bounded: `event` is a GitHub event name the adapter has a rule for, `other`, or
`none` (header missing); `outcome` and `reason` are fixed sets. Never delivery ids, senders
or repositories.
"""

from __future__ import annotations

import enum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sources.github import events

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Seconds from request to answer. Fine at the low end (a loopback sink answers in ~1 ms),
up to 10 s, GitHub's delivery timeout."""


class Outcome(enum.StrEnum):
    """How a webhook request was answered."""

    ACCEPTED = "accepted"  # 202: the sink accepted the event
    QUEUED = "queued"  # 202: still queued for the sink when the ack timeout came
    DUPLICATE = "duplicate"  # 200: this delivery id already reached the sink
    DROPPED = "dropped"  # 200: event type not in GITHUB_EVENT_TYPES
    UNAUTHORIZED = "unauthorized"  # 401: signature missing, malformed or wrong
    BAD_REQUEST = "bad_request"  # 400: headers missing, bad event name, malformed JSON
    TOO_LARGE = "too_large"  # 413: above GITHUB_MAX_PAYLOAD_BYTES
    UNSUPPORTED_MEDIA = "unsupported_media"  # 415: neither JSON nor form-encoded
    OVERLOADED = "overloaded"  # 503: queue full (count or bytes) or shutting down
    BUSY = "busy"  # 503: GITHUB_UNVERIFIED_BYTES taken by bodies being received
    TIMEOUT = "timeout"  # 408: body not received within GITHUB_BODY_TIMEOUT
    INCOMPLETE = "incomplete"  # 400: the client went away in the middle of the body
    SINK_FAILED = "sink_failed"  # 502/503: the sink refused or was unreachable


def event_label(event_name: str | None) -> str:
    if event_name is None:
        return "none"
    return event_name if event_name in events.RULES else "other"


class GitHubMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.webhooks = Counter(
            "kevents_github_webhooks",
            "Webhook requests answered, by GitHub event and outcome",
            ["event", "outcome"],
            registry=registry,
        )
        self.signature_failures = Counter(
            "kevents_github_signature_failures",
            "Webhooks refused with 401, by reason (missing|malformed|mismatch)",
            ["reason"],
            registry=registry,
        )
        self.unverified_bytes = Gauge(
            "kevents_github_unverified_bytes",
            "Body bytes reserved by webhooks being received, checked and parsed "
            "(bounded by GITHUB_UNVERIFIED_BYTES)",
            registry=registry,
        )
        self.latency = Histogram(
            "kevents_github_webhook_duration_seconds",
            "Seconds from receiving a webhook request to answering it, by outcome",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, event_name: str | None, outcome: Outcome, seconds: float) -> None:
        self.webhooks.labels(event_label(event_name), outcome.value).inc()
        self.latency.labels(outcome.value).observe(seconds)
