"""The KafkaChannel controller: KafkaChannels (primary), their `<name>-kn-channel` Services,
and in the system namespace the EndpointSlices of `kafka-channel-ingress` and the
ConfigMaps (`kafka-channel-config`): a change there concerns every KafkaChannel."""

from __future__ import annotations

from controller import context
from controller.channel import backing
from controller.framework import lifecycle, loop
from controller.inmemorychannel import service
from controller.kafkachannel import reconciler


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(reconciler.KIND)
    rec = lifecycle.GenericReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx), scope)
    opts = ctx.options
    watches = [
        loop.primary(reconciler.KAFKACHANNELS),
        loop.everything(
            service.ENDPOINTSLICES, opts.system_namespace,
            label_selector=f"kubernetes.io/service-name={opts.kafka_channel_ingress_service}",
        ),
        loop.everything(backing.CONFIGMAPS, opts.system_namespace),
    ]  # fmt: skip
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
