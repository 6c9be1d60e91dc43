"""The Kafka Broker controller: Brokers of class Kafka (primary), the EndpointSlices of the
`kafka-broker-ingress` Service and the ConfigMaps of the system namespace (a change there
concerns every Kafka Broker: all are reconciled again). Dead letter sinks come through the
tracker; Secrets are read with `get` only."""

from __future__ import annotations

from controller import context
from controller.broker import defaults
from controller.channel import backing
from controller.framework import loop
from controller.inmemorychannel import service
from controller.kafkabroker import reconciler

KIND = "KafkaBroker"
"""The work queue's and tracker's name (the objects are Brokers)."""


def build(ctx: context.Context) -> loop.Controller:
    queue, scope = ctx.queue_and_scope(KIND)
    rec = reconciler.KafkaBrokerReconciler(ctx.api, ctx.kinds, reconciler.Reconciler(ctx), scope)
    opts = ctx.options
    watches = [
        loop.primary(defaults.BROKERS),
        loop.everything(
            service.ENDPOINTSLICES, opts.system_namespace,
            label_selector=f"kubernetes.io/service-name={opts.kafka_broker_ingress_service}",
        ),
        loop.everything(backing.CONFIGMAPS, opts.system_namespace),
    ]  # fmt: skip
    return loop.Controller(
        rec, queue, watches, ctx.api, ctx.metrics,
        workers=opts.workers, resync=opts.resync, namespace=opts.namespace,
    )  # fmt: skip
