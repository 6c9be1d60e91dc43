"""The Subscription controller: Subscriptions (primary); their channels, subscribers,
replies and dead letter sinks through the tracker."""

from __future__ import annotations

from controller import context
from controller.framework import lifecycle, loop
from controller.subscription import entry, reconciler


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(entry.KIND)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx), scope)
    opts = ctx.options
    return loop.Controller(
        rec, queue, [loop.primary(entry.SUBSCRIPTIONS)], ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
