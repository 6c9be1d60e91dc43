"""`python -m sources.ping`: the multi-tenant PingSource adapter."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from prometheus_client import CollectorRegistry

from kevents import (
    endpoints,
    informer,
    kubeapi,
    leadership,
    logs,
    metrics,
    probes,
    retries,
    runner,
    sender,
    tracing,
)
from kevents import settings as kevents_settings
from sources.ping import adapter, clock, settings
from sources.ping import metrics as ping_metrics

logger = logging.getLogger("sources.ping")

PINGSOURCES = informer.Collection("sources.knative.dev", "v1", "pingsources", "PingSource")
RETRY = retries.RetryPolicy(
    retry=4, backoff_policy=retries.BackoffPolicy.EXPONENTIAL, backoff_delay=0.05,
    backoff_cap=5.0, jitter=0.2,
)  # fmt: skip
"""Knative's mtping retry (exponential from 50 ms, 5 attempts), with jitter: ten thousand
sources ticking together must not retry in lockstep against a recovering sink."""


async def main() -> int:
    config = kevents_settings.load_or_exit(settings.PingSettings.from_env)
    logs.setup(config.log_level, config.log_format)
    provider = tracing.make_provider(config.tracing_config, service_name="pingsource-mt-adapter")
    registry = CollectorRegistry()
    readiness = probes.Readiness()
    system_clock = clock.SystemClock()
    policy = dataclasses.replace(RETRY, timeout=config.sink_timeout)
    event_sender = sender.Sender(
        policy=policy,
        clock=system_clock,
        sender_metrics=metrics.SenderMetrics(
            registry, resource_group="pingsources.sources.knative.dev"
        ),
        tracer_provider=provider,
    )
    async with kubeapi.KubeApi(await kubeapi.configuration()) as api:
        elector = (
            leadership.LeaderElector(
                api,
                namespace=config.lease_namespace,
                name=config.lease_name,
                identity=config.identity,
                lease_duration=config.lease_duration,
                renew_deadline=config.renew_deadline,
                retry_period=config.retry_period,
            )
            if config.leader_election
            else None
        )
        ping = adapter.Adapter(
            event_sender=event_sender,
            ping_clock=system_clock,
            metrics=ping_metrics.PingMetrics(registry),
            leadership=elector,
            jitter=config.jitter,
            catchup=config.catchup,
            workers=config.workers,
        )
        watch = informer.Informer(
            api, PINGSOURCES, ping.handle,
            informer_metrics=informer.InformerMetrics(registry), initial=True,
        )  # fmt: skip

        async def ready_when_listed() -> None:
            await watch.listed.wait()
            readiness.set_ready()
            await asyncio.Event().wait()

        components: list[runner.Service | runner.Component] = [
            *endpoints.servers(registry, readiness, metrics_host=config.metrics_host,
                               metrics_port=config.metrics_port, probes_port=config.probes_port),
            event_sender,
            runner.Service(name="watch pingsources", run=watch.run, started=watch.wait_started),
            *([elector] if elector is not None else []),
            runner.Service(name="ping scheduler", run=ping.run,
                           stop=lambda: ping.drain(config.lease_duration)),
            runner.Service(name="readiness", run=ready_when_listed),
        ]  # fmt: skip
        try:
            return await runner.Runner(components, readiness=readiness).run()
        finally:
            provider.shutdown()


if __name__ == "__main__":
    runner.main(main)
