"""`python -m sources.github`: the GitHubSource receive adapter (one process per source)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from kevents import endpoints, logs, probes, runner, settings, tracing
from sources.github import adapter, config


async def main() -> int:
    github = settings.load_or_exit(config.Settings.from_env)
    common = github.adapter
    logs.setup(common.log_level, common.log_format)
    provider = tracing.make_provider(common.tracing_config, service_name=common.component)
    registry = CollectorRegistry()
    readiness = probes.Readiness()
    receive = adapter.Adapter(
        github, registry=registry, readiness=readiness, tracer_provider=provider
    )
    servers = endpoints.servers(
        registry, readiness, metrics_host=common.metrics_host, metrics_port=common.metrics_port,
        probes_host=github.host, probes_port=None if github.probes_shared else common.probes_port,
    )  # fmt: skip
    try:
        return await runner.Runner([*servers, *receive.components()], readiness=readiness).run()
    finally:
        provider.shutdown()


if __name__ == "__main__":
    runner.main(main)
