"""The GitHubSource controller: GitHubSources (primary), their adapter Deployments and
Services (owned, found by the `eventing.knative.dev/source` label), sinks through the
tracker, config-* changes through `Manager`. Secrets are not watched (the controller may only
`get` them): a new or rotated Secret is picked up by the next retry or resync."""

from __future__ import annotations

from controller import context
from controller.framework import lifecycle, loop
from controller.githubsource import adapter, reconciler


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(reconciler.KIND)
    opts = ctx.options

    def config() -> adapter.Config:
        return ctx.config.adapter_settings(opts.github_adapter_image)

    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx, config), scope)
    selector = f"eventing.knative.dev/source={adapter.CONTROLLER_AGENT}"
    watches = [
        loop.primary(reconciler.GITHUBSOURCES),
        loop.owned(adapter.DEPLOYMENTS, rec.kind, label_selector=selector),
        loop.owned(adapter.SERVICES, rec.kind, label_selector=selector),
    ]
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
