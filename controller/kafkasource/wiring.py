"""The KafkaSource controller: KafkaSources (primary), their adapter Deployments (owned, found
by the `eventing.knative.dev/source` label), sinks through the tracker, config-* changes
through `Manager`. Secrets are not watched (the controller may only `get` them) and the
brokers report nothing by themselves: a source that failed on them is reconciled again within
`reconciler.RECHECK` seconds, so a fixed password or a broker coming back shows without waiting for
the resync."""

from __future__ import annotations

from controller import context
from controller.framework import lifecycle, loop
from controller.kafkasource import adapter, reconciler


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(reconciler.KIND)
    opts = ctx.options

    def config() -> adapter.Config:
        return ctx.config.adapter_settings(opts.kafka_adapter_image)

    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx, config), scope)
    selector = f"eventing.knative.dev/source={adapter.CONTROLLER_AGENT}"
    watches = [
        loop.primary(reconciler.KAFKASOURCES),
        loop.owned(adapter.DEPLOYMENTS, rec.kind, label_selector=selector),
    ]
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
