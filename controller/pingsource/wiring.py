"""The PingSource controller: PingSources (primary), the shared adapter Deployment in the
system namespace (any change re-evaluates Deployed for all), sinks through the tracker."""

from __future__ import annotations

from controller import availability, context
from controller.framework import lifecycle, loop
from controller.pingsource import adapter, reconciler


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(reconciler.KIND)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx), scope)
    opts = ctx.options
    watches = [
        loop.primary(reconciler.PINGSOURCES),
        loop.everything(
            availability.DEPLOYMENTS, opts.system_namespace,
            field_selector=f"metadata.name={adapter.NAME}",
        ),
    ]  # fmt: skip
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
