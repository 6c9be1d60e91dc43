"""`python -m sources.github`: the GitHubSource receive adapter (one process per source)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from kevents import logs, metrics, probes, runner, settings, tracing, webserver
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
    servers: list[runner.Service | runner.Component] = [
        webserver.WebServer(
            metrics.make_app(registry),
            host=common.metrics_host,
            port=common.metrics_port,
            name="metrics",
        )
    ]
    if not github.probes_shared:
        servers.append(
            webserver.WebServer(
                probes.make_app(readiness), host=github.host, port=common.probes_port, name="probes"
            )
        )
    try:
        return await runner.Runner([*servers, *receive.components()], readiness=readiness).run()
    finally:
        provider.shutdown()


if __name__ == "__main__":
    runner.main(main)
