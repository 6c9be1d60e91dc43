"""The serving controllers: Services (and their Configurations and Kubernetes Services),
Configurations (and their Revisions), Revisions (and their Deployments). Children are found
by their serving labels, so unrelated objects never reach the handlers."""

from __future__ import annotations

from controller import availability, context
from controller.framework import lifecycle, loop
from controller.serving import configuration, resources, revision, service


def _controller(
    ctx: context.Context, impl: lifecycle.Kind, watches: list[loop.Watch]
) -> loop.Controller:
    queue, _ = ctx.queue_and_scope(impl.kind)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, impl)
    opts = ctx.options
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip


def build_service(ctx: context.Context) -> loop.Controller:
    return _controller(ctx, service.Reconciler(ctx), [
        loop.primary(resources.SERVICES),
        loop.owned(resources.CONFIGURATIONS, service.KIND, label_selector=resources.SERVICE_LABEL),
        loop.owned(resources.CORE_SERVICES, service.KIND, label_selector=resources.SERVICE_LABEL),
    ])  # fmt: skip


def build_configuration(ctx: context.Context) -> loop.Controller:
    return _controller(ctx, configuration.Reconciler(ctx), [
        loop.primary(resources.CONFIGURATIONS),
        loop.owned(
            resources.REVISIONS, configuration.KIND, label_selector=resources.CONFIGURATION_LABEL
        ),
    ])  # fmt: skip


def build_revision(ctx: context.Context) -> loop.Controller:
    return _controller(ctx, revision.Reconciler(ctx), [
        loop.primary(resources.REVISIONS),
        loop.owned(
            availability.DEPLOYMENTS, revision.KIND, label_selector=resources.REVISION_UID_LABEL
        ),
    ])  # fmt: skip
