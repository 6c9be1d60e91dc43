"""The dispatcher of one process, assembled: informers -> routing table -> ingresses -> fan-out.

`components()` hands the pieces to `kevents.runner.Runner` in start order:

1. the sender (pooled HTTP session),
2. the channel informer (every InMemoryChannel of every namespace; started once listed, so
   no existing channel answers 404 after a restart),
3. the Trigger informer (the broker filter's table; started once listed, or after
   `TRIGGERS_LIST_WAIT` s without the Trigger CRD: deliveries wait for Triggers they lack),
4. the status reporter, 5. the fan-out (owns the delivery tasks),
6. the channel ingress and 7. the broker ingress (their stop hooks drain: 503 to new
   requests, accepted events delivered),
8. readiness.

Stopping runs in reverse: drain first, then the ingress closes, then the sender.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from opentelemetry import trace
from prometheus_client import CollectorRegistry

from dispatcher import channels, dispatch, fanout, ingress, lane, status
from dispatcher import metrics as dispatcher_metrics
from dispatcher import settings as dispatcher_settings
from dispatcher.broker import filterendpoint, triggers
from dispatcher.broker import ingress as broker_ingress
from kevents import httpserver, informer, kubeapi, probes, runner, sender, tracing, webserver
from kevents import metrics as kevents_metrics

logger = logging.getLogger(__name__)

CHANNELS = informer.Collection("messaging.knative.dev", "v1", "inmemorychannels", "InMemoryChannel")
TRIGGERS = informer.Collection("eventing.knative.dev", "v1", "triggers", "Trigger")
TRIGGERS_LIST_WAIT = 10.0
"""Seconds start-up waits for the first Trigger list: a cluster without Brokers installed
still gets its channels served."""


class Dispatcher:
    def __init__(
        self,
        api: kubeapi.KubeApi,
        config: dispatcher_settings.DispatcherSettings,
        *,
        registry: CollectorRegistry,
        readiness: probes.Readiness,
        tracer_provider: trace.TracerProvider | None = None,
        broker_tracer_providers: tuple[trace.TracerProvider, trace.TracerProvider] | None = None,
        event_sender: sender.Sender | None = None,
        worker_index: int = 0,
    ) -> None:
        """`event_sender` lets tests inject a Sender with a fake clock;
        `broker_tracer_providers` (ingress, filter) give the broker's spans their own
        service names (default: `tracer_provider`'s)."""
        self.config = config
        self._readiness = readiness
        self.metrics = dispatcher_metrics.DispatcherMetrics(registry)
        self.sender = event_sender or sender.Sender(
            tracer_provider=tracer_provider,
            limit_per_host=max(sender.DEFAULT_LIMIT_PER_HOST, config.subscriber_concurrency),
        )
        self.triggers: dict[tuple[str, str], triggers.Trigger] = {}
        """The broker filter's table, kept by the Trigger informer."""
        ingress_provider, filter_provider = broker_tracer_providers or (
            tracer_provider,
            tracer_provider,
        )
        self.fanout = fanout.Fanout(
            dispatch.Courier(
                self.sender,
                self.metrics,
                trigger_table=self.triggers,
                filter_tracer=filter_provider.get_tracer("kevents.broker.filter")
                if filter_provider is not None and tracing.records(filter_provider)
                else None,
                trigger_sender=self.sender.traced_by(filter_provider),
            ),
            self.metrics,
            queue_size=config.queue_size,
            queue_bytes=config.queue_bytes,
            concurrency=config.subscriber_concurrency,
            backlog=config.subscriber_backlog,
            sojourn=lane.Sojourn(config.sojourn_target, config.sojourn_interval),
        )
        timeouts = httpserver.Timeouts(
            header=config.ingress_header_timeout,
            idle=config.ingress_idle_timeout,
            body=config.ingress_body_timeout,
        )
        server_metrics = kevents_metrics.HTTPServerMetrics(registry)
        self.ingress = ingress.Ingress(
            self.fanout,
            self.metrics,
            max_body_size=config.max_body_size,
            retry_after=config.drain_retry_after,
            tracer_provider=tracer_provider if tracing.records(tracer_provider) else None,
            timeouts=timeouts,
        )
        self.http = self.ingress.make_server(name="ingress", metrics=server_metrics)
        self.server = webserver.WebServer(
            self.http,
            host=config.ingress_host,
            port=config.ingress_port,
            name="ingress",
            reuse_port=config.workers > 1,
        )
        self.broker = broker_ingress.BrokerIngress(self.fanout, max_ttl=config.broker_max_ttl)
        self.broker_ingress = ingress.Ingress(
            self.fanout,
            self.metrics,
            max_body_size=config.max_body_size,
            retry_after=config.drain_retry_after,
            tracer_provider=ingress_provider if tracing.records(ingress_provider) else None,
            lookup=self.broker.lookup,
            prepare=self.broker.prepare,
            span_name="broker.ingress",
            answered=self.metrics.broker_answered,
            timeouts=timeouts,
        )
        self.filter_endpoint = filterendpoint.FilterEndpoint(
            self.sender,
            self.triggers,
            self.metrics,
            max_body_size=config.max_body_size,
            retry_after=config.drain_retry_after,
        )
        self.broker_http = broker_ingress.make_server(
            self.broker_ingress, self.filter_endpoint, metrics=server_metrics
        )
        self.broker_server = webserver.WebServer(
            self.broker_http,
            host=config.ingress_host,
            port=config.broker_ingress_port,
            name="broker ingress",
            reuse_port=config.workers > 1,
        )
        self.reporter: status.StatusReporter | None = (
            status.StatusReporter(api) if config.report_status and worker_index == 0 else None
        )
        informer_metrics = informer.InformerMetrics(registry)
        self.informer = informer.Informer(
            api,
            CHANNELS,
            self.on_change,
            informer_metrics=informer_metrics,
            initial=True,
        )
        self.trigger_informer = informer.Informer(
            api,
            TRIGGERS,
            self.on_trigger,
            informer_metrics=informer_metrics,
            initial=True,
        )

    async def on_trigger(self, change: informer.Change, obj: dict[str, Any]) -> None:
        """Informer handler: keep the broker filter's Trigger table in step."""
        key = triggers.key_of(obj)
        if change is informer.Change.DELETE:
            self.triggers.pop(key, None)
            return
        found = triggers.parse(obj)
        before = self.triggers.get(key)
        self.triggers[key] = found
        if found.problem and (before is None or before.problem != found.problem):
            logger.warning(
                "Trigger %s/%s cannot be served yet: %s.", key[0], key[1], found.problem,
                extra={"namespace": key[0], "object_name": key[1]},
            )  # fmt: skip

    async def _triggers_listed(self) -> None:
        try:
            async with asyncio.timeout(TRIGGERS_LIST_WAIT):
                await self.trigger_informer.wait_started()
        except TimeoutError:
            logger.warning(
                "Triggers could not be listed within %.0f s (is the Trigger CRD installed?); "
                "serving channels meanwhile.",
                TRIGGERS_LIST_WAIT,
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
            runner.Service(
                name="trigger informer",
                run=self.trigger_informer.run,
                started=self._triggers_listed,
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
            runner.Service(
                name="broker ingress",
                run=self.broker_server.run,
                started=self.broker_server.wait_started,
                stop=self._drain,
            ),
            runner.Service(name="ingress log summaries", run=self.http.run),
            runner.Service(name="broker ingress log summaries", run=self.broker_http.run),
            runner.Service(name="readiness", run=self._ready),
        ]
        return parts
