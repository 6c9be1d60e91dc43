"""The controller process: metrics and probes servers, leader election, reconcilers.

Components, in start order (the shared `kevents.runner` stops them in reverse):
metrics (:9090) -> probes (:8080) -> SinkBinding webhook (:8443, every replica) -> Event
recorder (`kevents.kubeevents`) -> leader election -> reconcilers (only while leading).
Readiness turns true when this replica is serving: a standby is ready too (it only waits
for the Lease), so rolling updates are not blocked by leader election.

Leadership (`kevents.leadership`, the shared election): the reconcilers, their watches and
workers start once the Lease is held, and are cancelled the moment the elector may have
lost it (its renewals did not succeed within the renew deadline, or another replica holds
the Lease), before anyone else can acquire it. The process then exits, as
controller-runtime's manager does: a replica that lost the Lease mid-reconcile restarts as a
fresh candidate instead of resuming with stale queues and caches. On SIGTERM the runner
stops the reconcilers first and then releases the Lease, so a standby takes over at once.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry

from controller import context, manager, settings
from controller.framework import metrics
from controller.serving import ownership
from controller.sinkbinding import selection, webhook
from kevents import endpoints, kubeapi, kubeevents, leadership, logs, probes, runner
from kevents import metrics as kmetrics
from kevents import settings as ksettings

logger = logging.getLogger(__name__)


class Leading:
    """Runs the reconcilers only while the elector leads; cancels them when it may not."""

    def __init__(
        self, elector: leadership.LeaderElector, controller: runner.Component,
        gauge: metrics.ControllerMetrics,
    ) -> None:  # fmt: skip
        self.elector = elector
        self.controller = controller
        self.gauge = gauge
        self.name = "reconcilers"

    async def run(self) -> None:
        await self.elector.leading.wait()
        self.gauge.leader.set(1)
        try:
            async with asyncio.TaskGroup() as group:
                reconciling = group.create_task(self.controller.run(), name="controllers")
                lost = group.create_task(self.elector.lost.wait(), name="leadership lost")
                await asyncio.wait({reconciling, lost}, return_when=asyncio.FIRST_COMPLETED)
                reconciling.cancel()
                lost.cancel()
        finally:
            self.gauge.leader.set(0)
        if not self.elector.lost.is_set():
            return  # the reconcilers ended on their own: the runner shuts down
        logger.error("Stopped reconciling: this replica may have lost the Lease.")
        raise leadership.LeadershipLost(f"{self.elector.identity} stopped leading")


async def main() -> int:
    cfg = ksettings.load_or_exit(settings.ControllerSettings.from_env)
    logs.setup(cfg.log_level, cfg.log_format)
    registry = CollectorRegistry()
    readiness = probes.Readiness()
    observed = metrics.ControllerMetrics(registry)
    async with kubeapi.KubeApi(await kubeapi.configuration()) as api:
        elector = leadership.LeaderElector(
            api, namespace=cfg.system_namespace, name=cfg.lease_name, identity=cfg.identity,
            rejoin=False,
        )  # fmt: skip
        options = context.Options(
            system_namespace=cfg.system_namespace,
            apiserver_adapter_image=cfg.apiserver_adapter_image,
            ping_adapter_image=cfg.ping_adapter_image,
            github_adapter_image=cfg.github_adapter_image,
            kafka_adapter_image=cfg.kafka_adapter_image,
            workers=cfg.workers,
            resync=cfg.resync_seconds,
            config_recheck=cfg.config_recheck_seconds,
            serving=await ownership.enabled(api, ownership.Mode(cfg.serving)),
        )
        recorder = kubeevents.Recorder(api, event_metrics=kmetrics.KubeEventMetrics(registry))
        controller = manager.Manager(api, observed, options, recorder=recorder)
        readiness.set_ready()
        components: list[runner.Service | runner.Component] = [
            *endpoints.servers(registry, readiness, metrics_host="0.0.0.0",
                               metrics_port=cfg.metrics_port, probes_port=cfg.probes_port),
            webhook.Webhook(api, webhook.Options(
                cfg.system_namespace, port=cfg.webhook_port,
                configuration=cfg.webhook_configuration,
                validation=cfg.validation_configuration,
                defaulting=cfg.defaulting_configuration,
                conversion=webhook.CONVERSION_CRDS,
                selection_mode=selection.Mode(cfg.sink_binding_selection_mode),
            ), events=kubeevents.Emitter(recorder, kubeevents.Source("webhook"))),
            recorder,
            elector,
            Leading(elector, controller, observed),
        ]  # fmt: skip
        return await runner.Runner(components, readiness=readiness).run()
