"""The controllers of the old `sources.eventing.knative.dev` kinds: the old objects
(primary) and the `sources.knative.dev` objects they own (found by `MIRROR_LABEL`, mapped to
their owner by the owner reference's apiVersion and kind, since today's ApiServerSource is
owned by old ApiServerSources and KubernetesEventSources alike). Sinks of old
ContainerSources come through the tracker."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from controller import context
from controller.framework import lifecycle, loop
from controller.legacysources import reconciler
from kevents import kubeapi

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


def _controller(
    ctx: context.Context, implementation: lifecycle.Kind, watches: list[loop.Watch]
) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(implementation.kind)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, implementation, scope)
    opts = ctx.options
    return loop.Controller(
        rec, queue, [loop.primary(implementation.resource), *watches], ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
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
