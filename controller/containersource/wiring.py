"""The ContainerSource controller: sources (primary), and their Deployments and SinkBindings
(owned, found by the `sources.knative.dev/source` label so unrelated objects never reach the
handler). A binding's status change (sink resolved or changed) wakes its source up."""

from __future__ import annotations

from controller import availability, context
from controller.containersource import reconciler, resources
from controller.framework import lifecycle, loop
from controller.sinkbinding import reconciler as sinkbinding


def build(ctx: context.Context) -> loop.Controller:
    queue, _ = ctx.queue_and_scope(reconciler.KIND)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx))
    label = f"sources.knative.dev/source={resources.CONTROLLER_AGENT}"
    watches = [
        loop.primary(reconciler.CONTAINERSOURCES),
        loop.owned(availability.DEPLOYMENTS, rec.kind, label_selector=label),
        loop.owned(sinkbinding.SINKBINDINGS, rec.kind, label_selector=label),
    ]
    opts = ctx.options
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
