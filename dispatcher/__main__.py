"""`python -m dispatcher [--workers N]`: the InMemoryChannel dispatcher and broker.

One Deployment serves every channel of the cluster, and as the multi-tenant broker ingress
and filter every Broker and Trigger; every replica (and every worker process of a replica)
serves every channel and broker, so scaling never breaks acceptance (knative#4638).
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys

from prometheus_client import CollectorRegistry

from dispatcher import aggregation, service, workers
from dispatcher import settings as dispatcher_settings
from kevents import endpoints, kubeapi, logs, metrics, probes, runner, settings, tracing

logger = logging.getLogger("dispatcher")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dispatcher", description=__doc__)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes sharing the ingress port (default: KEVENTS_DISPATCHER_WORKERS or 1)",
    )
    return parser.parse_args()


async def serve(config: dispatcher_settings.DispatcherSettings, index: int) -> int:
    provider = tracing.make_provider(
        config.tracing_config, service_name=dispatcher_settings.COMPONENT
    )
    broker_providers = (
        tracing.make_provider(config.tracing_config, service_name="broker-ingress"),
        tracing.make_provider(config.tracing_config, service_name="broker-filter"),
    )
    registry = CollectorRegistry()
    readiness = probes.Readiness()
    shared = config.workers > 1
    try:
        async with kubeapi.KubeApi(await kubeapi.configuration()) as api:
            dispatcher = service.Dispatcher(
                api,
                config,
                registry=registry,
                readiness=readiness,
                tracer_provider=provider,
                broker_tracer_providers=broker_providers,
                worker_index=index,
            )
            # One endpoint for the pod: worker 0 serves every worker's metrics summed; the
            # others serve theirs on loopback for it (dispatcher.aggregation).
            if shared and index == 0:
                peers = [
                    f"http://127.0.0.1:{config.metrics_port + i}/metrics"
                    for i in range(1, config.workers)
                ]
                metrics_app = aggregation.make_app(registry, peers)
            else:
                metrics_app = metrics.make_app(registry)
            servers = endpoints.servers(
                registry, readiness, metrics_app=metrics_app,
                metrics_host=config.metrics_host if index == 0 else "127.0.0.1",
                metrics_port=config.metrics_port + index,
                probes_host=config.probes_host, probes_port=config.probes_port, reuse_port=shared,
            )  # fmt: skip
            run = runner.Runner(
                [*servers, *dispatcher.components()],
                readiness=readiness,
                grace=config.grace + 5.0,
            )
            # Objects made at start-up (modules, the routing table) never become garbage:
            # keeping them out of the collector's generations shortens every collection.
            gc.freeze()
            return await run.run()
    finally:
        provider.shutdown()
        for each in broker_providers:
            each.shutdown()


def main() -> None:
    args = _arguments()
    config = settings.load_or_exit(
        lambda: dispatcher_settings.DispatcherSettings.from_env(workers=args.workers)
    )
    logs.setup(config.log_level, config.log_format)
    index = workers.worker_index()
    if config.workers > 1 and index is None:
        sys.exit(workers.supervise(config.workers))

    async def entry() -> int:
        return await serve(config, index or 0)

    runner.main(entry)


if __name__ == "__main__":
    main()
