"""The EventType controller: EventTypes (primary); the objects they reference come through
the tracker."""

from __future__ import annotations

from controller import context
from controller.eventtype import reconciler
from controller.framework import lifecycle, loop


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(reconciler.Reconciler.kind)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx.kinds), scope)
    opts = ctx.options
    return loop.Controller(
        rec, queue, [loop.primary(reconciler.EVENTTYPES)], ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
