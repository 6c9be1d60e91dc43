"""The Sequence and Parallel controllers: the flows (primary); their channels (of any kind)
and Subscriptions come through the tracker, so a child's status change reconciles its flow."""

from __future__ import annotations

from controller import context
from controller.flows import reconciler
from controller.framework import lifecycle, loop


def _build(ctx: context.Context, implementation: reconciler.FlowReconciler) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(implementation.kind)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, implementation, scope)
    opts = ctx.options
    return loop.Controller(
        rec, queue, [loop.primary(implementation.resource)], ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip


def build_sequence(ctx: context.Context) -> loop.Controller:
    return _build(ctx, reconciler.Sequence(ctx))


def build_parallel(ctx: context.Context) -> loop.Controller:
    return _build(ctx, reconciler.Parallel(ctx))
