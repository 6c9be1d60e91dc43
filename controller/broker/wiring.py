"""The Broker controller: its reconciler and what wakes it up.

Watches: the Brokers (primary); in the system namespace the EndpointSlices of the shared
`broker-ingress` and `broker-filter` Services and the ConfigMaps (`config-br-defaults`,
`config-br-default-channel`) -- any change there concerns every Broker, so it re-reconciles
all of them (Knative's GlobalResync). Trigger channels and dead letter sinks come through
the tracker.
"""

from __future__ import annotations

from controller import context
from controller.broker import defaults, reconciler
from controller.channel import backing
from controller.framework import lifecycle, loop
from controller.inmemorychannel import service


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(defaults.KIND)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx), scope)
    opts = ctx.options
    system = opts.system_namespace
    services = f"{opts.broker_filter_service},{opts.broker_ingress_service}"
    watches = [
        loop.primary(defaults.BROKERS),
        loop.everything(
            service.ENDPOINTSLICES, system,
            label_selector=f"kubernetes.io/service-name in ({services})",
        ),
        loop.everything(backing.CONFIGMAPS, system),
    ]  # fmt: skip
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
