"""The ApiServerSource controller: its reconciler and what wakes it up.

Watches: the sources (primary) and their adapter Deployments (owned, found by the
`eventing.knative.dev/source` label so unrelated Deployments never reach the handler);
sinks come through the tracker, config-* changes through `Manager`.
"""

from __future__ import annotations

from controller import context
from controller.apiserversource import adapter, reconciler
from controller.framework import lifecycle, loop


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(reconciler.Reconciler.kind)
    source = reconciler.Reconciler(
        ctx.api, ctx.kinds, ctx.config.adapter_config, ce_source=ctx.api.host
    )
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, source, scope)
    watches = [
        loop.primary(reconciler.APISERVERSOURCES),
        loop.owned(
            adapter.DEPLOYMENTS,
            rec.kind,
            label_selector=f"eventing.knative.dev/source={adapter.CONTROLLER_AGENT}",
        ),
    ]
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=ctx.options.workers, resync=ctx.options.resync, namespace=ctx.options.namespace,
    )  # fmt: skip
