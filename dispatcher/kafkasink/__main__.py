"""`python -m dispatcher.kafkasink`: the KafkaSink ingress (Deployment `kafka-sink-ingress`).

`serve_plane` is the process around a Kafka data plane (API client, metrics and probe
servers, tracing, the runner): the Kafka Broker's entry point (`dispatcher.kafkabroker`)
uses it with its own plane.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from dispatcher.kafkasink import service
from dispatcher.kafkasink import settings as sink_settings
from kevents import endpoints, kubeapi, logs, probes, runner, settings, tracing

logger = logging.getLogger("dispatcher.kafkasink")


class Plane(Protocol):
    """A Kafka data plane: what it runs besides the metrics and probe servers."""

    def components(self) -> list[runner.Service | runner.Component]: ...


PlaneFactory = Callable[
    [kubeapi.KubeApi, CollectorRegistry, probes.Readiness, TracerProvider], Plane
]
"""Builds the plane from the process's API client, registry, readiness and tracer provider."""


async def serve_plane(
    config: sink_settings.KafkaSinkSettings, component: str, make: PlaneFactory
) -> int:
    """Run the plane `make` builds, with metrics, probes and tracing from `config`."""
    provider = tracing.make_provider(config.tracing_config, service_name=component)
    registry = CollectorRegistry()
    readiness = probes.Readiness()
    try:
        async with kubeapi.KubeApi(await kubeapi.configuration()) as api:
            plane = make(api, registry, readiness, provider)
            run = runner.Runner(
                [
                    *endpoints.servers(
                        registry,
                        readiness,
                        metrics_host=config.metrics_host,
                        metrics_port=config.metrics_port,
                        probes_host=config.probes_host,
                        probes_port=config.probes_port,
                    ),  # fmt: skip
                    *plane.components(),
                ],
                readiness=readiness,
                grace=config.grace + 5.0,
            )
            return await run.run()
    finally:
        provider.shutdown()


async def serve(config: sink_settings.KafkaSinkSettings) -> int:
    def make(
        api: kubeapi.KubeApi,
        registry: CollectorRegistry,
        readiness: probes.Readiness,
        provider: TracerProvider,
    ) -> Plane:
        return service.KafkaSinkIngress(
            api, config, registry=registry, readiness=readiness, tracer_provider=provider
        )

    return await serve_plane(config, sink_settings.COMPONENT, make)


def main() -> None:
    config = settings.load_or_exit(sink_settings.KafkaSinkSettings.from_env)
    logs.setup(config.log_level, config.log_format)

    async def entry() -> int:
        return await serve(config)

    runner.main(entry)


if __name__ == "__main__":
    main()
