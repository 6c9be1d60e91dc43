"""The Channel controller: Channels (primary); backing channels of any kind through the
tracker (their kind is only known from each Channel's template)."""

from __future__ import annotations

from controller import context
from controller.channel import backing, reconciler
from controller.framework import lifecycle, loop


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(backing.KIND)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx), scope)
    opts = ctx.options
    return loop.Controller(
        rec, queue, [loop.primary(backing.CHANNELS)], ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
