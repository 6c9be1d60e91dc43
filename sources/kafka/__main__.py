"""`python -m sources.kafka`: the KafkaSource receive adapter (one consumer group member)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from kevents import endpoints, logs, probes, runner, settings, tracing
from sources.kafka import adapter, config

SERVICE = "kafka-source"
"""The adapter's name in traces (Zipkin's serviceName)."""


async def main() -> int:
    adapter_settings = settings.load_or_exit(settings.AdapterSettings.from_env)
    logs.setup(adapter_settings.log_level, adapter_settings.log_format)
    source = settings.load_or_exit(config.Settings.from_env)
    provider = tracing.make_provider(adapter_settings.tracing_config, service_name=SERVICE)
    registry = CollectorRegistry()
    readiness = probes.Readiness()
    receive = adapter.Adapter(
        adapter_settings, source, registry=registry, readiness=readiness,
        tracer_provider=provider,
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
