"""The controllers of the old `sources.eventing.knative.dev` kinds: the old objects
(primary) and the `sources.knative.dev` objects they own (found by `MIRROR_LABEL`, mapped to
their owner by the owner reference's apiVersion and kind, since today's ApiServerSource is
owned by old ApiServerSources and KubernetesEventSources alike). Sinks of old
ContainerSources come through the tracker.

The old group's CRDs are opt-in (`manifests/legacy/`): with both groups installed, a plain
`kubectl get apiserversources` resolves to the old one (kubectl orders CRD groups by name).
So each controller waits, without holding the others back, until its resource is served
(`WhenServed`), and runs from then on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence

from controller import context
from controller.framework import lifecycle, loop, metrics, reconciling, workqueue
from controller.legacysources import reconciler
from kevents import kubeapi

logger = logging.getLogger(__name__)

Builder = Callable[[context.Context], loop.Controller]


def mirrored(kind: type[reconciler.Mirror]) -> loop.Watch:
    """The new objects owned by old objects of `kind`."""

    def keys(event: str, obj: kubeapi.Json) -> Iterable[str]:
        meta = obj.get("metadata", {})
        for ref in meta.get("ownerReferences") or []:
            if (
                ref.get("controller")
                and ref.get("apiVersion") == reconciler.API_VERSION
                and ref.get("kind") == kind.old_kind
            ):
                return (f"{meta.get('namespace', '')}/{ref.get('name', '')}",)
        return ()

    value = f"{kind.resource.plural}.{reconciler.GROUP}"
    return loop.Watch(kind.target, keys, label_selector=f"{reconciler.MIRROR_LABEL}={value}")


SERVED_RECHECK = 30.0
"""Seconds between checks whether an opt-in CRD has been installed."""


class WhenServed(loop.Controller):
    """A controller that starts once its primary resource is served by the apiserver, and
    counts as started meanwhile (an opt-in CRD that is absent holds nothing up)."""

    def __init__(
        self, resource: kubeapi.Resource, reconciler: reconciling.Reconciler,
        queue: workqueue.WorkQueue, watches: Sequence[loop.Watch], api: kubeapi.KubeApi,
        observed: metrics.ControllerMetrics, *, workers: int, resync: float,
        namespace: str | None, served_recheck: float = SERVED_RECHECK,
    ) -> None:  # fmt: skip
        super().__init__(
            reconciler, queue, watches, api, observed,
            workers=workers, resync=resync, namespace=namespace,
        )  # fmt: skip
        self.resource = resource
        self.api = api
        self.served_recheck = served_recheck

    async def served(self) -> bool:
        """Whether API discovery lists the resource; an apiserver that cannot answer yet
        counts as "not yet" (asked again after `served_recheck`)."""
        try:
            found = await self.api.request("GET", self.resource.path().rsplit("/", 1)[0])
        except kubeapi.NotFound:
            return False
        except (kubeapi.ApiError, TimeoutError, OSError) as exc:
            logger.warning("Could not tell whether %s is served (%s).", self.resource, exc)
            return False
        return any(r.get("name") == self.resource.plural for r in found.get("resources", []))

    async def run(self) -> None:
        announced = False
        while not await self.served():
            self.synced.set()
            if not announced:
                logger.info(
                    "%s is not installed (apply manifests/legacy/ to serve it); checking "
                    "every %.0f s.", self.resource.plural + "." + self.resource.group,
                    self.served_recheck,
                )  # fmt: skip
                announced = True
            await asyncio.sleep(self.served_recheck)
        await super().run()


def _controller(
    ctx: context.Context, implementation: lifecycle.Kind, watches: list[loop.Watch]
) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(implementation.kind)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, implementation, scope)
    opts = ctx.options
    return WhenServed(
        implementation.resource, rec, queue, [loop.primary(implementation.resource), *watches],
        ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
        served_recheck=SERVED_RECHECK,
    )  # fmt: skip


def _mirror(kind: type[reconciler.Mirror]) -> Builder:
    def build(ctx: context.Context) -> loop.Controller:
        return _controller(ctx, kind(ctx.api), [mirrored(kind)])

    return build


def build_gcppubsubsource(ctx: context.Context) -> loop.Controller:
    return _controller(ctx, reconciler.GcpPubSubSource(), [])


build_apiserversource = _mirror(reconciler.ApiServerSource)
build_kuberneteseventsource = _mirror(reconciler.KubernetesEventSource)
build_containersource = _mirror(reconciler.ContainerSource)
build_githubsource = _mirror(reconciler.GitHubSource)
