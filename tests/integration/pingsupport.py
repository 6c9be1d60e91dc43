"""Helpers for PingSource adapter tests: the CRD, PingSources with a patched sink, a sink."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from kevents import cloudevent, informer, kubeapi, leadership, sender
from sources.ping import adapter, clock, metrics
from tests import cluster

GROUP, VERSION, PLURAL = "sources.knative.dev", "v1", "pingsources"


def install_crd(kube: cluster.Kube) -> None:
    kube.kubectl("apply", "-f", str(cluster.REPO / "manifests" / "300-pingsource.yaml"))
    kube.kubectl("wait", "--for=condition=Established", "crd/pingsources.sources.knative.dev")


async def create(
    api: client.ApiClient, namespace: str, name: str, sink: str, **spec: Any
) -> dict[str, Any]:
    """Create a PingSource and resolve its sink the way the controller will (status)."""
    objects = client.CustomObjectsApi(api)
    body = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "PingSource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"sink": {"uri": sink}, **spec},
    }  # fmt: skip
    await objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    patched: dict[str, Any] = await objects.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
        GROUP, VERSION, namespace, PLURAL, name, {"status": {"sinkUri": sink}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    return patched


@dataclasses.dataclass
class Sink:
    events: list[tuple[float, cloudevent.CloudEvent, dict[str, str]]] = dataclasses.field(
        default_factory=list
    )
    url: str = ""
    arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        event = cloudevent.decode(dict(request.headers), await request.read())
        loop = asyncio.get_running_loop()
        self.events.append((loop.time(), event, dict(request.headers)))
        self.arrived.set()
        return web.Response(status=202)

    async def wait_for(self, count: int, within: float = 20) -> None:
        async with asyncio.timeout(within):
            while len(self.events) < count:
                self.arrived.clear()
                await self.arrived.wait()


@contextlib.asynccontextmanager
async def serve_sink() -> AsyncIterator[Sink]:
    sink = Sink()
    app = web.Application()
    app.router.add_post("/", sink.handle)
    app_runner = web.AppRunner(app)
    await app_runner.setup()
    site = web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    sink.url = f"http://127.0.0.1:{app_runner.addresses[0][1]}/"
    try:
        yield sink
    finally:
        await app_runner.cleanup()


@dataclasses.dataclass
class Replica:
    adapter: adapter.Adapter
    watch: informer.Informer
    elector: leadership.LeaderElector | None
    registry: CollectorRegistry
    task: asyncio.Task[None] | None = None

    def kill(self) -> None:
        """Crash: stop at once, without releasing the Lease."""
        assert self.task is not None
        self.task.cancel()


@contextlib.asynccontextmanager
async def replica(
    api: client.ApiClient,
    ping_clock: clock.Clock,
    namespace: str,
    *,
    elector: leadership.LeaderElector | None = None,
    **options: Any,
) -> AsyncIterator[Replica]:
    """One in-process adapter replica: informer, optional elector, scheduler.

    The process watches all namespaces; a test watches only its own, so PingSources of
    earlier tests (their namespaces still terminating) stay out of its counts.
    """
    registry = CollectorRegistry()
    async with sender.Sender(sender_metrics=None) as event_sender:
        ping = adapter.Adapter(
            event_sender=event_sender, ping_clock=ping_clock,
            metrics=metrics.PingMetrics(registry), leadership=elector, workers=8, **options,
        )  # fmt: skip
        watch = informer.Informer(
            kubeapi.KubeApi(api),
            informer.Collection(GROUP, VERSION, PLURAL, "PingSource", namespace),
            ping.handle,
            informer_metrics=informer.InformerMetrics(registry), initial=True,
        )  # fmt: skip
        result = Replica(ping, watch, elector, registry)

        async def run() -> None:
            async with asyncio.TaskGroup() as group:
                group.create_task(watch.run())
                await watch.listed.wait()
                if elector is not None:
                    group.create_task(elector.run())
                group.create_task(ping.run())

        result.task = asyncio.create_task(run())
        try:
            await asyncio.wait_for(watch.listed.wait(), 20)
            yield result
        finally:
            result.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await result.task
