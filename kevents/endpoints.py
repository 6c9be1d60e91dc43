"""The two ports every component serves besides its own work: Prometheus `/metrics` and the
kubelet's `/health` + `/readiness` probes, as runner components.

They are `kevents.opserver` servers, so a deployable that needs no aiohttp does not import it
(see `opserver` for the memory it saves); only a `metrics_app` given as an aiohttp app (the
dispatcher's summing of its workers' metrics) is served by `kevents.webserver`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from kevents import metrics, opserver, probes

if TYPE_CHECKING:
    from aiohttp import web

    from kevents import webserver


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
) -> list[opserver.Server | webserver.WebServer]:
    """The metrics server (`metrics_app`, else the registry's exposition) and the probes
    server; `probes_port=None` when the component answers the probes on its own port.
    `reuse_port`: worker processes share the probes port."""
    out: list[opserver.Server | webserver.WebServer] = []
    if metrics_app is not None:
        from kevents import webserver  # aiohttp: only where an aiohttp app is given

        out.append(webserver.WebServer(
            metrics_app, host=metrics_host, port=metrics_port, name="metrics"
        ))  # fmt: skip
    else:
        out.append(opserver.Server(
            metrics.routes(registry), host=metrics_host, port=metrics_port, name="metrics"
        ))  # fmt: skip
    if probes_port is not None:
        out.append(
            opserver.Server(
                probes.routes(readiness),
                host=probes_host,
                port=probes_port,
                name="probes",
                reuse_port=reuse_port,
            )
        )
    return out
