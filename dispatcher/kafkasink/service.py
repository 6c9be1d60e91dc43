"""The KafkaSink ingress of one process, assembled: informer -> sink table -> ingress.

`components()` hands the pieces to `kevents.runner.Runner` in start order: the producer
table (closes producers no sink uses; all at stop, flushing), the KafkaSink informer
(started once listed, so no existing sink answers 404 after a restart), the ingress (its
stop hook drains: 503 to new requests, events being produced finish), readiness. Stopping
runs in reverse.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from opentelemetry import trace
from prometheus_client import CollectorRegistry

from dispatcher.kafkasink import ingress, producers, sinks
from dispatcher.kafkasink import metrics as sink_metrics
from dispatcher.kafkasink import settings as sink_settings
from kevents import httpserver, informer, kubeapi, probes, runner, tracing, webserver
from kevents import metrics as kevents_metrics

logger = logging.getLogger(__name__)

KAFKASINKS = informer.Collection("eventing.knative.dev", "v1alpha1", "kafkasinks", "KafkaSink")


class KafkaSinkIngress:
    def __init__(
        self,
        api: kubeapi.KubeApi,
        config: sink_settings.KafkaSinkSettings,
        *,
        registry: CollectorRegistry,
        readiness: probes.Readiness,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.config = config
        self._readiness = readiness
        self.metrics = sink_metrics.KafkaSinkMetrics(registry)
        self.table = producers.Table(
            api,
            self.metrics,
            produce_timeout=config.produce_timeout,
            secret_recheck=config.secret_recheck,
        )
        self.ingress = ingress.Ingress(
            self.table,
            self.metrics,
            max_body_size=config.max_body_size,
            produce_timeout=config.produce_timeout,
            produce_target=config.produce_target,
            retry_after=config.retry_after,
            tracer_provider=tracer_provider if tracing.records(tracer_provider) else None,
            timeouts=httpserver.Timeouts(
                header=config.ingress_header_timeout,
                idle=config.ingress_idle_timeout,
                body=config.ingress_body_timeout,
            ),
        )
        self.http = self.ingress.make_server(metrics=kevents_metrics.HTTPServerMetrics(registry))
        self.server = webserver.WebServer(
            self.http, host=config.ingress_host, port=config.ingress_port, name="ingress"
        )
        self.informer = informer.Informer(
            api,
            KAFKASINKS,
            self.on_change,
            informer_metrics=informer.InformerMetrics(registry),
            initial=True,
        )

    async def on_change(self, change: informer.Change, obj: dict[str, Any]) -> None:
        """Informer handler: keep the sink table in step."""
        key = sinks.key_of(obj)
        if change is informer.Change.DELETE:
            self.table.remove(key)
            return
        try:
            sink = sinks.parse(obj)
        except sinks.SinkError as exc:
            logger.warning(
                "KafkaSink %s/%s cannot be served: %s.", key[0], key[1], exc,
                extra={"namespace": key[0], "object_name": key[1]},
            )  # fmt: skip
            self.table.remove(key)
            return
        self.table.update(sink)

    async def _drain(self) -> None:
        await self.ingress.drain(self.config.grace)

    async def _ready(self) -> None:
        self._readiness.set_ready()
        logger.info("Serving %d KafkaSink(s) on port %d.", len(self.table.sinks), self.server.port)
        await asyncio.Event().wait()  # until cancelled

    def components(self) -> list[runner.Service | runner.Component]:
        return [
            runner.Service(name="kafka producers", run=self.table.run),
            runner.Service(
                name="kafkasink informer", run=self.informer.run, started=self.informer.wait_started
            ),
            runner.Service(
                name="ingress",
                run=self.server.run,
                started=self.server.wait_started,
                stop=self._drain,
            ),  # fmt: skip
            runner.Service(name="ingress log summaries", run=self.http.run),
            runner.Service(name="readiness", run=self._ready),
        ]
