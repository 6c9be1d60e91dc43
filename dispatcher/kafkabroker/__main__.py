"""`python -m dispatcher.kafkabroker`: the Kafka Broker class's ingress and Trigger consumer
groups (Deployment `kafka-broker`, Service `kafka-broker-ingress`; scale by replicas)."""

from __future__ import annotations

import logging

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from dispatcher.kafkabroker import service
from dispatcher.kafkabroker import settings as broker_settings
from dispatcher.kafkasink.__main__ import Plane, serve_plane
from kevents import kubeapi, logs, probes, runner, settings

logger = logging.getLogger("dispatcher.kafkabroker")


async def serve(config: broker_settings.KafkaBrokerSettings) -> int:
    def make(
        api: kubeapi.KubeApi,
        registry: CollectorRegistry,
        readiness: probes.Readiness,
        provider: TracerProvider,
    ) -> Plane:
        return service.KafkaBrokerDataPlane(
            api, config, registry=registry, readiness=readiness, tracer_provider=provider
        )

    return await serve_plane(config.ingress, broker_settings.COMPONENT, make)


def main() -> None:
    config = settings.load_or_exit(broker_settings.KafkaBrokerSettings.from_env)
    logs.setup(config.ingress.log_level, config.ingress.log_format)

    async def entry() -> int:
        return await serve(config)

    runner.main(entry)


if __name__ == "__main__":
    main()
