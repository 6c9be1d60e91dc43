"""The two ports every component serves besides its own work: Prometheus `/metrics` and the
kubelet's `/health` + `/readiness` probes, as runner components."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from kevents import metrics, probes, webserver


def servers(
    registry: CollectorRegistry,
    readiness: probes.Readiness,
    *,
    metrics_host: str,
    metrics_port: int,
    probes_port: int | None,
    probes_host: str = "0.0.0.0",
    metrics_app: web.Application | None = None,
    reuse_port: bool = False,
) -> list[webserver.WebServer]:
    """The metrics server (`metrics_app`, else the registry's exposition) and the probes
    server; `probes_port=None` when the component answers the probes on its own port.
    `reuse_port`: worker processes share the probes port."""
    out = [
        webserver.WebServer(
            metrics_app if metrics_app is not None else metrics.make_app(registry),
            host=metrics_host,
            port=metrics_port,
            name="metrics",
        )
    ]
    if probes_port is not None:
        out.append(
            webserver.WebServer(
                probes.make_app(readiness),
                host=probes_host,
                port=probes_port,
                name="probes",
                reuse_port=reuse_port,
            )
        )
    return out
