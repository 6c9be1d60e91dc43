"""`python -m sources.apiserver`: the ApiServerSource receive adapter."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry

from kevents import endpoints, errors, kubeapi, logs, probes, runner, settings, tracing
from sources.apiserver import adapter, checkpoint, config
from sources.apiserver import metrics as source_metrics

logger = logging.getLogger("sources.apiserver")
SERVICE = "apiserver-source"
"""The adapter's name in traces (Zipkin's serviceName)."""


async def main() -> int:
    adapter_settings = settings.load_or_exit(settings.AdapterSettings.from_env)
    logs.setup(adapter_settings.log_level, adapter_settings.log_format)
    source = settings.load_or_exit(lambda: config.parse(adapter_settings.source_config))
    saving = settings.load_or_exit(checkpoint.Settings.from_env)
    provider = tracing.make_provider(adapter_settings.tracing_config, service_name=SERVICE)
    registry = CollectorRegistry()
    readiness = probes.Readiness()
    async with kubeapi.KubeApi(await kubeapi.configuration()) as api:
        try:
            kinds = await adapter.discover(api, source.resources)
        except errors.ConfigError as err:
            logger.error("Cannot start: %s", err)
            return 1
        counters = source_metrics.SourceMetrics(registry)
        saves, saved = None, {}
        if saving.enabled:
            saves = checkpoint.Checkpoint(
                api, adapter_settings.namespace, adapter_settings.name, saving.source_uid,
                counters, interval=saving.interval,
            )  # fmt: skip
            saved = await saves.load()
        receive = adapter.Adapter(
            api, adapter_settings, source, kinds,
            registry=registry, readiness=readiness, tracer_provider=provider,
            saves=saves, saved=saved, source_metrics=counters,
        )  # fmt: skip
        servers = endpoints.servers(
            registry, readiness, metrics_host=adapter_settings.metrics_host,
            metrics_port=adapter_settings.metrics_port, probes_port=adapter_settings.probes_port,
        )  # fmt: skip
        try:
            return await runner.Runner([*servers, *receive.components()], readiness=readiness).run()
        finally:
            provider.shutdown()


if __name__ == "__main__":
    runner.main(main)
