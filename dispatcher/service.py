"""The dispatcher of one process, assembled: informer -> routing table -> ingress -> fan-out.

`components()` hands the pieces to `kevents.runner.Runner` in start order:

1. the sender (pooled HTTP session),
2. the channel informer (every InMemoryChannel of every namespace; started once listed, so
   no existing channel answers 404 after a restart),
3. the status reporter, 4. the fan-out (owns the delivery tasks),
5. the ingress (its stop hook drains: 503 to new requests, accepted events delivered),
6. readiness.

Stopping runs in reverse: drain first, then the ingress closes, then the sender.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubernetes_asyncio import client
from opentelemetry import trace
from prometheus_client import CollectorRegistry

from dispatcher import channels, dispatch, fanout, ingress, status
from dispatcher import metrics as dispatcher_metrics
from dispatcher import settings as dispatcher_settings
from kevents import informer, probes, runner, sender, tracing, webserver

logger = logging.getLogger(__name__)

CHANNELS = informer.Collection("messaging.knative.dev", "v1", "inmemorychannels", "InMemoryChannel")


class Dispatcher:
    def __init__(
        self,
        api: client.ApiClient,
        config: dispatcher_settings.DispatcherSettings,
        *,
        registry: CollectorRegistry,
        readiness: probes.Readiness,
        tracer_provider: trace.TracerProvider | None = None,
        event_sender: sender.Sender | None = None,
        worker_index: int = 0,
    ) -> None:
        """`event_sender` lets tests inject a Sender with a fake clock."""
        self.config = config
        self._readiness = readiness
        self.metrics = dispatcher_metrics.DispatcherMetrics(registry)
        self.sender = event_sender or sender.Sender(
            tracer_provider=tracer_provider,
            limit_per_host=max(sender.DEFAULT_LIMIT_PER_HOST, config.subscriber_concurrency),
        )
        self.fanout = fanout.Fanout(
            dispatch.Courier(self.sender, self.metrics),
            self.metrics,
            queue_size=config.queue_size,
            queue_bytes=config.queue_bytes,
            concurrency=config.subscriber_concurrency,
            backlog=config.subscriber_backlog,
        )
        self.ingress = ingress.Ingress(
            self.fanout,
            self.metrics,
            max_body_size=config.max_body_size,
            retry_after=config.drain_retry_after,
            tracer_provider=tracer_provider if tracing.records(tracer_provider) else None,
        )
        self.server = webserver.WebServer(
            self.ingress.make_server(),
            host=config.ingress_host,
            port=config.ingress_port,
            name="ingress",
            reuse_port=config.workers > 1,
        )
        self.reporter: status.StatusReporter | None = (
            status.StatusReporter(api) if config.report_status and worker_index == 0 else None
        )
        self.informer = informer.Informer(
            api,
            CHANNELS,
            self.on_change,
            informer_metrics=informer.InformerMetrics(registry),
            initial=True,
        )

    async def on_change(self, change: informer.Change, obj: dict[str, Any]) -> None:
        """Informer handler: keep the routing table (and reported status) in step."""
        key = channels.key_of(obj)
        if change is informer.Change.DELETE:
            self.fanout.remove(key)
            if self.reporter is not None:
                self.reporter.forget(key)
            return
        channel = channels.parse(obj)
        self.fanout.update(channel)
        for target in channel.targets:
            if target.problem:
                logger.warning(
                    "Subscriber %s of channel %s/%s: %s.", target.uid, key[0], key[1],
                    target.problem, extra={"namespace": key[0], "object_name": key[1]},
                )  # fmt: skip
        if self.reporter is not None and channels.needs_report(channel):
            self.reporter.want(key, channels.statuses(channel))

    async def _drain(self) -> None:
        await self.fanout.drain(self.config.grace)

    async def _ready(self) -> None:
        self._readiness.set_ready()
        logger.info("Serving %d channel(s) on port %d.", len(self.fanout.routes), self.server.port)
        await asyncio.Event().wait()  # until cancelled

    def components(self) -> list[runner.Service | runner.Component]:
        parts: list[runner.Service | runner.Component] = [
            self.sender,
            runner.Service(
                name="channel informer",
                run=self.informer.run,
                started=self.informer.wait_started,
            ),
        ]
        if self.reporter is not None:
            parts.append(runner.Service(name="status reporter", run=self.reporter.run))
        parts += [
            runner.Service(name="fan-out", run=self.fanout.run, started=self.fanout.wait_started),
            runner.Service(
                name="ingress",
                run=self.server.run,
                started=self.server.wait_started,
                stop=self._drain,
            ),
            runner.Service(name="readiness", run=self._ready),
        ]
        return parts
