"""The Trigger controller: Triggers (primary) and their Subscriptions (owned, by the trigger
label); Brokers, subscribers, dead letter sinks and dependencies through the tracker."""

from __future__ import annotations

from controller import context
from controller.framework import lifecycle, loop
from controller.trigger import reconciler, subscription


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(subscription.KIND)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx), scope)
    opts = ctx.options
    watches = [
        loop.primary(subscription.TRIGGERS),
        loop.owned(subscription.SUBSCRIPTIONS, subscription.KIND, subscription.TRIGGER_LABEL),
    ]
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
