"""The InMemoryChannel controller: its reconciler and what wakes it up.

Watches: the channels (primary), their Services (owned, by the role label), and in the
system namespace the dispatcher Deployment, Service and EndpointSlices -- any change there
concerns every channel, so it re-reconciles all of them (Knative's GlobalResync). Dead
letter sinks come through the tracker.
"""

from __future__ import annotations

from controller import availability, context
from controller.framework import lifecycle, loop
from controller.inmemorychannel import reconciler, service


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(service.KIND)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx), scope)
    opts = ctx.options
    system = opts.system_namespace
    watches = [
        loop.primary(service.INMEMORYCHANNELS),
        loop.owned(service.SERVICES, service.KIND, f"{service.ROLE_LABEL}={service.ROLE}"),
        loop.everything(
            availability.DEPLOYMENTS, system,
            field_selector=f"metadata.name={opts.dispatcher_deployment}",
        ),
        loop.everything(
            service.SERVICES, system, field_selector=f"metadata.name={opts.dispatcher_service}"
        ),
        loop.everything(
            service.ENDPOINTSLICES, system,
            label_selector=f"kubernetes.io/service-name={opts.dispatcher_service}",
        ),
    ]  # fmt: skip
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
