"""Hosts every kind's controller in one process (controller-runtime's Manager).

The shared pieces are made once: the JSON client, discovery, the tracker (one watch per
referenced collection for all kinds) and the config-* store. Each kind contributes a
`wiring.build(ctx) -> loop.Controller`; `run()` starts, in order, the config watch, the
tracker and every controller (each: watches synced, then workers), and is meant to run
only while this replica leads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

from controller import configstore, context
from controller.apiserversource import wiring as apiserversource
from controller.broker import wiring as broker
from controller.brokerinjection import wiring as brokerinjection
from controller.channel import wiring as channel
from controller.containersource import wiring as containersource
from controller.eventtype import wiring as eventtype
from controller.flows import wiring as flows
from controller.framework import discovery, lifecycle, loop, metrics, tracking
from controller.githubsource import wiring as githubsource
from controller.inmemorychannel import wiring as inmemorychannel
from controller.kafkabroker import wiring as kafkabroker
from controller.kafkachannel import wiring as kafkachannel
from controller.kafkasink import wiring as kafkasink
from controller.kafkasource import wiring as kafkasource
from controller.legacysources import wiring as legacysources
from controller.pingsource import wiring as pingsource
from controller.serving import wiring as serving
from controller.sinkbinding import wiring as sinkbinding
from controller.subscription import wiring as subscription
from controller.trigger import wiring as trigger
from kevents import kubeapi, kubeevents

logger = logging.getLogger(__name__)

Builder = Callable[[context.Context], loop.Controller]

KINDS: dict[str, Builder] = {
    "ApiServerSource": apiserversource.build,
    "InMemoryChannel": inmemorychannel.build,
    "Channel": channel.build,
    "Subscription": subscription.build,
    "PingSource": pingsource.build,
    "GitHubSource": githubsource.build,
    "SinkBinding": sinkbinding.build,
    "ContainerSource": containersource.build,
    "Broker": broker.build,
    "Trigger": trigger.build,
    "Namespace": brokerinjection.build,
    "ApiServerSource.sources.eventing.knative.dev": legacysources.build_apiserversource,
    "KubernetesEventSource.sources.eventing.knative.dev": (
        legacysources.build_kuberneteseventsource
    ),
    "ContainerSource.sources.eventing.knative.dev": legacysources.build_containersource,
    "GitHubSource.sources.eventing.knative.dev": legacysources.build_githubsource,
    "GcpPubSubSource.sources.eventing.knative.dev": legacysources.build_gcppubsubsource,
    "Sequence": flows.build_sequence,
    "Parallel": flows.build_parallel,
    "KafkaSink": kafkasink.build,
    "KafkaSource": kafkasource.build,
    "KafkaBroker": kafkabroker.build,
    "KafkaChannel": kafkachannel.build,
    "EventType": eventtype.build,
}
"""Every kind this process reconciles, by kind name."""

SERVING_KINDS: dict[str, Builder] = {
    "Service": serving.build_service,
    "Configuration": serving.build_configuration,
    "Revision": serving.build_revision,
}
"""The minimal Knative Serving, reconciled when `Options.serving` (or named in `kinds`)."""


class Manager:
    def __init__(
        self,
        api: kubeapi.KubeApi,
        observed: metrics.ControllerMetrics,
        options: context.Options,
        *,
        kinds: Collection[str] | None = None,
        recorder: kubeevents.Recorder | None = None,
    ) -> None:
        """`kinds` selects a subset of `KINDS` (tests); None = all of them. `recorder`: the
        Events every kind records on its objects (None: none recorded)."""
        every = {**KINDS, **SERVING_KINDS}
        unknown = set(kinds or ()) - every.keys()
        if unknown:
            raise ValueError(f"unknown kinds: {sorted(unknown)}")
        restarts = observed.watch_restarts
        self.config = configstore.ConfigStore(
            api,
            namespace=options.system_namespace,
            image=options.apiserver_adapter_image,
            on_change=self._enqueue_all,
        )
        self.tracker = tracking.Tracker(api, on_watch_restart=lambda r: restarts.labels(r).inc())
        self.context = context.Context(
            api, discovery.Discovery(api), self.tracker, self.config, observed, options
        )
        self.controllers = [
            build(self.context)
            for kind, build in every.items()
            if (kind in kinds if kinds is not None else kind in KINDS or options.serving)
        ]
        for ctl in self.controllers:
            if isinstance(ctl.reconciler, lifecycle.GenericReconciler):
                ctl.reconciler.events.recorder = recorder
        self.synced = asyncio.Event()
        self.name = "controllers"

    def controller(self, kind: str) -> loop.Controller:
        return next(c for c in self.controllers if c.kind == kind)

    async def wait_started(self) -> None:
        await self.synced.wait()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.config.watcher.run(), name="watch config")
            await self.config.watcher.wait_started()
            group.create_task(self.tracker.run(), name="tracker")
            for ctl in self.controllers:
                group.create_task(ctl.run(), name=ctl.name)
            for ctl in self.controllers:
                await ctl.wait_started()
            self.synced.set()
            logger.info("Reconciling %s.", ", ".join(c.kind for c in self.controllers) or "nothing")

    def _enqueue_all(self) -> None:
        for ctl in self.controllers:
            ctl.enqueue_all()
