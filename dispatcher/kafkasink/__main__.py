"""`python -m dispatcher.kafkasink`: the KafkaSink ingress (Deployment `kafka-sink-ingress`)."""

from __future__ import annotations

import logging

from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from dispatcher.kafkasink import service
from dispatcher.kafkasink import settings as sink_settings
from kevents import kubeapi, logs, metrics, probes, runner, settings, tracing, webserver

logger = logging.getLogger("dispatcher.kafkasink")


async def serve(config: sink_settings.KafkaSinkSettings) -> int:
    provider = tracing.make_provider(config.tracing_config, service_name=sink_settings.COMPONENT)
    registry = CollectorRegistry()
    readiness = probes.Readiness()
    try:
        async with client.ApiClient(configuration=await kubeapi.configuration()) as api_client:
            ingress = service.KafkaSinkIngress(
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
                        host=config.metrics_host,
                        port=config.metrics_port,
                        name="metrics",
                    ),
                    webserver.WebServer(
                        probes.make_app(readiness),
                        host=config.probes_host,
                        port=config.probes_port,
                        name="probes",
                    ),
                    *ingress.components(),
                ],
                readiness=readiness,
                grace=config.grace + 5.0,
            )
            return await run.run()
    finally:
        provider.shutdown()


def main() -> None:
    config = settings.load_or_exit(sink_settings.KafkaSinkSettings.from_env)
    logs.setup(config.log_level, config.log_format)

    async def entry() -> int:
        return await serve(config)

    runner.main(entry)


if __name__ == "__main__":
    main()
