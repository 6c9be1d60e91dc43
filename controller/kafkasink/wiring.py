"""The KafkaSink controller: KafkaSinks (primary) and, in the system namespace, the
EndpointSlices of the `kafka-sink-ingress` Service (a change concerns every KafkaSink's
DataPlaneAvailable, so all are reconciled again). Secrets are read with `get` only."""

from __future__ import annotations

from controller import context
from controller.framework import lifecycle, loop
from controller.inmemorychannel import service
from controller.kafkasink import reconciler


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(reconciler.KIND)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx), scope)
    opts = ctx.options
    watches = [
        loop.primary(reconciler.KAFKASINKS),
        loop.everything(
            service.ENDPOINTSLICES, opts.system_namespace,
            label_selector=f"kubernetes.io/service-name={opts.kafka_sink_ingress_service}",
        ),
    ]  # fmt: skip
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
