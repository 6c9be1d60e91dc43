"""`python -m dispatcher.kafkabroker`: the Kafka Broker class's ingress and Trigger consumer
groups (Deployment `kafka-broker`, Service `kafka-broker-ingress`; scale by replicas)."""

from __future__ import annotations

import logging

from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from dispatcher.kafkabroker import service
from dispatcher.kafkabroker import settings as broker_settings
from kevents import kubeapi, logs, metrics, probes, runner, settings, tracing, webserver

logger = logging.getLogger("dispatcher.kafkabroker")


async def serve(config: broker_settings.KafkaBrokerSettings) -> int:
    ing = config.ingress
    provider = tracing.make_provider(ing.tracing_config, service_name=broker_settings.COMPONENT)
    registry = CollectorRegistry()
    readiness = probes.Readiness()
    try:
        async with client.ApiClient(configuration=await kubeapi.configuration()) as api_client:
            plane = service.KafkaBrokerDataPlane(
                kubeapi.KubeApi(api_client),
                config,
                registry=registry,
                readiness=readiness,
                tracer_provider=provider,
            )
            run = runner.Runner(
                [
                    webserver.WebServer(
                        metrics.make_app(registry),
                        host=ing.metrics_host,
                        port=ing.metrics_port,
                        name="metrics",
                    ),
                    webserver.WebServer(
                        probes.make_app(readiness),
                        host=ing.probes_host,
                        port=ing.probes_port,
                        name="probes",
                    ),
                    *plane.components(),
                ],
                readiness=readiness,
                grace=ing.grace + 5.0,
            )
            return await run.run()
    finally:
        provider.shutdown()


def main() -> None:
    config = settings.load_or_exit(broker_settings.KafkaBrokerSettings.from_env)
    logs.setup(config.ingress.log_level, config.ingress.log_format)

    async def entry() -> int:
        return await serve(config)

    runner.main(entry)


if __name__ == "__main__":
    main()
