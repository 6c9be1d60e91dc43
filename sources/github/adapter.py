"""The GitHubSource receive adapter assembled: sender -> queue -> webhook server -> ready.

`Adapter(settings, ...)` owns every piece; `components()` hands them to the runner in start
order (sender open, queue workers, webhook server bound, then ready). Shutdown runs in
reverse: the server stops taking webhooks and lets in-flight ones get their answer, then the
queue drains, then the sender closes.
"""

from __future__ import annotations

import asyncio
import logging

from opentelemetry import trace
from prometheus_client import CollectorRegistry

from kevents import metrics, probes, retries, runner, sender, webserver
from sources.github import config, deliveries, forwarder, receiver
from sources.github import metrics as github_metrics

logger = logging.getLogger(__name__)

RESOURCE_GROUP = "githubsources.sources.knative.dev"


class Adapter:
    def __init__(
        self,
        settings: config.Settings,
        *,
        registry: CollectorRegistry,
        readiness: probes.Readiness,
        tracer_provider: trace.TracerProvider | None = None,
        policy: retries.RetryPolicy = forwarder.RETRY,
    ) -> None:
        self.settings = settings
        self._readiness = readiness
        adapter = settings.adapter
        sender_metrics = metrics.SenderMetrics(
            registry, namespace=adapter.namespace, name=adapter.name, resource_group=RESOURCE_GROUP
        )
        self.sender = sender.Sender.from_settings(
            adapter, policy=policy, sender_metrics=sender_metrics, tracer_provider=tracer_provider
        )
        self.forwarder = forwarder.Forwarder(
            self.sender,
            adapter.sink,
            cache=deliveries.DeliveryCache(maxsize=settings.dedupe_size, ttl=settings.dedupe_ttl),
            ack_timeout=settings.ack_timeout,
            queue_size=settings.queue_size,
            queue_bytes=settings.queue_bytes,
            workers=settings.workers,
            policy=self.sender.policy,
            sender_metrics=sender_metrics,
        )
        self.metrics = github_metrics.GitHubMetrics(registry)
        self.receiver = receiver.Receiver(
            settings,
            self.forwarder,
            github_metrics=self.metrics,
            readiness=readiness if settings.probes_shared else None,
            tracer_provider=tracer_provider,
        )
        self.http_server = self.receiver.make_server(metrics.HTTPServerMetrics(registry))
        self.server = webserver.WebServer(
            self.http_server,
            host=settings.host,
            port=settings.port,
            name="webhooks",
            shutdown_timeout=settings.ack_timeout + 1.0,
        )

    async def _ready(self) -> None:
        self._readiness.set_ready()
        logger.info(
            "Receiving GitHub webhooks for %s on port %d; events go to the sink.",
            self.settings.owner_and_repository, self.server.port,
        )  # fmt: skip
        await asyncio.Event().wait()

    def components(self) -> list[runner.Service | runner.Component]:
        return [
            runner.Service(name="refusal-summaries", run=self.receiver.refusals.run),
            runner.Service(name="http-summaries", run=self.http_server.run),
            self.sender,
            self.forwarder.queue,
            self.server,
            runner.Service(name="readiness", run=self._ready),
        ]
