"""The Kafka data plane of one process, assembled: informers -> ingresses + groups.

Two ingresses of the one Kafka ingress class (`dispatcher.kafkasink.ingress`): Brokers of
class Kafka at `/<ns>/<name>` (port `ingress_port`), KafkaChannels by Host (port
`channel_port`), each with its own producer table; one set of consumer groups for both
(`groups`, fed by `wanted`).

`components()` hands the pieces to `kevents.runner.Runner` in start order: the sender, the
producer tables, the Broker, Trigger and KafkaChannel informers (started once listed, so no
existing Broker answers 404 after a restart; KafkaChannels are waited for at most
`LIST_WAIT` s, in case their CRD is not installed), the consumer groups, the ingresses (their
stop hooks drain: 503 to new requests, events being produced finish), readiness. Stopping
runs in reverse: the ingresses drain, then the groups stop polling, finish deliveries in
flight, commit and leave their groups (their partitions move to the other replicas at once).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from opentelemetry import trace
from prometheus_client import CollectorRegistry

from dispatcher import dispatch
from dispatcher import metrics as dispatcher_metrics
from dispatcher.broker import triggers
from dispatcher.kafkabroker import brokers, groups, wanted
from dispatcher.kafkabroker import metrics as group_metrics
from dispatcher.kafkabroker import settings as broker_settings
from dispatcher.kafkasink import ingress, producers
from dispatcher.kafkasink import metrics as sink_metrics
from kevents import httpserver, informer, kubeapi, probes, runner, sender, tracing, webserver
from kevents import metrics as kevents_metrics

logger = logging.getLogger(__name__)

BROKERS = informer.Collection("eventing.knative.dev", "v1", "brokers", "Broker")
TRIGGERS = informer.Collection("eventing.knative.dev", "v1", "triggers", "Trigger")
KAFKACHANNELS = informer.Collection(
    "messaging.knative.dev", "v1beta1", "kafkachannels", "KafkaChannel"
)
LIST_WAIT = 10.0
"""Seconds start-up waits for the first KafkaChannel list (the CRD may not be installed)."""


class KafkaBrokerDataPlane:
    def __init__(
        self,
        api: kubeapi.KubeApi,
        config: broker_settings.KafkaBrokerSettings,
        *,
        registry: CollectorRegistry,
        readiness: probes.Readiness,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        ing = config.ingress
        self._readiness = readiness
        self.metrics = sink_metrics.KafkaSinkMetrics(registry)
        self.delivery_metrics = dispatcher_metrics.DispatcherMetrics(registry)
        self.sender = sender.Sender(
            tracer_provider=tracer_provider,
            limit_per_host=max(sender.DEFAULT_LIMIT_PER_HOST, config.subscriber_concurrency),
        )
        self.table = producers.Table(
            api, self.metrics, produce_timeout=ing.produce_timeout,
            secret_recheck=ing.secret_recheck,
        )  # fmt: skip
        self.triggers: dict[tuple[str, str], triggers.Trigger] = {}
        recording = tracer_provider if tracing.records(tracer_provider) else None
        courier = dispatch.Courier(
            self.sender,
            self.delivery_metrics,
            trigger_table=self.triggers,
            filter_tracer=recording.get_tracer("kevents.broker.filter") if recording else None,
        )
        self.channel_table = producers.Table(
            api, self.metrics, produce_timeout=ing.produce_timeout,
            secret_recheck=ing.secret_recheck,
        )  # fmt: skip
        self.trigger_groups = wanted.TriggerGroups(
            self.table, self.triggers, reply_url=config.reply_url
        )
        self.channel_groups = wanted.ChannelGroups(self.channel_table)
        self.groups = groups.Groups(
            courier,
            [self.trigger_groups, self.channel_groups],
            options=config.group_options,
            metrics=group_metrics.GroupMetrics(registry),
        )
        self.ingress = ingress.Ingress(
            self.table,
            self.metrics,
            max_body_size=ing.max_body_size,
            produce_timeout=ing.produce_timeout,
            produce_target=ing.produce_target,
            retry_after=ing.retry_after,
            tracer_provider=recording,
            timeouts=httpserver.Timeouts(
                header=ing.ingress_header_timeout,
                idle=ing.ingress_idle_timeout,
                body=ing.ingress_body_timeout,
            ),
            noun="Broker",
            span_name="broker.ingress",
        )
        server_metrics = kevents_metrics.HTTPServerMetrics(registry)
        self.http = self.ingress.make_server(metrics=server_metrics)
        self.server = webserver.WebServer(
            self.http, host=ing.ingress_host, port=ing.ingress_port, name="ingress"
        )
        self.channel_ingress = ingress.Ingress(
            self.channel_table,
            self.metrics,
            max_body_size=ing.max_body_size,
            produce_timeout=ing.produce_timeout,
            produce_target=ing.produce_target,
            retry_after=ing.retry_after,
            tracer_provider=recording,
            timeouts=httpserver.Timeouts(
                header=ing.ingress_header_timeout,
                idle=ing.ingress_idle_timeout,
                body=ing.ingress_body_timeout,
            ),
            noun="KafkaChannel",
            span_name="kafkachannel.produce",
            by_host=True,
        )
        self.channel_http = self.channel_ingress.make_server(metrics=server_metrics)
        self.channel_server = webserver.WebServer(
            self.channel_http, host=ing.ingress_host, port=config.channel_port,
            name="channel ingress",
        )  # fmt: skip
        informer_metrics = informer.InformerMetrics(registry)
        self.channel_informer = informer.Informer(
            api, KAFKACHANNELS, self.on_channel, informer_metrics=informer_metrics, initial=True
        )
        self.broker_informer = informer.Informer(
            api, BROKERS, self.on_broker, informer_metrics=informer_metrics, initial=True
        )
        self.trigger_informer = informer.Informer(
            api, TRIGGERS, self.on_trigger, informer_metrics=informer_metrics, initial=True
        )

    async def on_broker(self, change: informer.Change, obj: dict[str, Any]) -> None:
        key = brokers.key_of(obj)
        served = None if change is informer.Change.DELETE else brokers.parse(obj)
        if served is None:
            self.table.remove(key)
            self.trigger_groups.brokers.pop(key, None)
        else:
            self.table.update(served.sink)
            self.trigger_groups.brokers[key] = served
        self.groups.changed()

    async def on_trigger(self, change: informer.Change, obj: dict[str, Any]) -> None:
        key = triggers.key_of(obj)
        if change is informer.Change.DELETE:
            self.triggers.pop(key, None)
            self.trigger_groups.triggers.pop(key, None)
        else:
            self.triggers[key] = triggers.parse(obj)
            self.trigger_groups.triggers[key] = obj
        self.groups.changed()

    async def on_channel(self, change: informer.Change, obj: dict[str, Any]) -> None:
        key = brokers.key_of(obj)
        sink = None if change is informer.Change.DELETE else brokers.channel_sink(obj)
        if sink is None:
            self.channel_table.remove(key)
            self.channel_groups.channels.pop(key, None)
        else:
            self.channel_table.update(sink)
            self.channel_groups.channels[key] = obj
        self.groups.changed()

    async def _channels_listed(self) -> None:
        try:
            async with asyncio.timeout(LIST_WAIT):
                await self.channel_informer.wait_started()
        except TimeoutError:
            logger.warning("KafkaChannels could not be listed within %.0f s (is the CRD "
                           "installed?); serving Brokers meanwhile.", LIST_WAIT)  # fmt: skip

    async def _drain(self) -> None:
        await asyncio.gather(
            self.ingress.drain(self.config.ingress.grace),
            self.channel_ingress.drain(self.config.ingress.grace),
        )

    async def _ready(self) -> None:
        self._readiness.set_ready()
        logger.info("Serving %d Kafka Broker(s) on port %d.", len(self.table.sinks),
                    self.server.port)  # fmt: skip
        await asyncio.Event().wait()  # until cancelled

    def components(self) -> list[runner.Service | runner.Component]:
        return [
            self.sender,
            runner.Service(name="kafka producers", run=self.table.run),
            runner.Service(name="kafka channel producers", run=self.channel_table.run),
            runner.Service(
                name="broker informer",
                run=self.broker_informer.run,
                started=self.broker_informer.wait_started,
            ),
            runner.Service(
                name="trigger informer",
                run=self.trigger_informer.run,
                started=self.trigger_informer.wait_started,
            ),
            runner.Service(
                name="kafkachannel informer",
                run=self.channel_informer.run,
                started=self._channels_listed,
            ),
            runner.Service(name="consumer groups", run=self.groups.run, stop=self.groups.stop),
            runner.Service(
                name="channel ingress",
                run=self.channel_server.run,
                started=self.channel_server.wait_started,
            ),
            runner.Service(
                name="ingress",
                run=self.server.run,
                started=self.server.wait_started,
                stop=self._drain,
            ),  # fmt: skip
            runner.Service(name="ingress log summaries", run=self.http.run),
            runner.Service(name="channel ingress log summaries", run=self.channel_http.run),
            runner.Service(name="readiness", run=self._ready),
        ]
