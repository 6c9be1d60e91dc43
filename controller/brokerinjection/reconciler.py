"""Reconciler of Namespaces for Broker injection (knative/eventing
`pkg/reconciler/sugar/namespace`): a labelled namespace without a Broker `default` gets
one, with the class its namespace defaults to (`config-br-defaults`)."""

from __future__ import annotations

import logging

from controller import context
from controller.broker import defaults
from controller.brokerinjection import injection
from controller.channel import backing
from controller.framework import lifecycle
from kevents import kubeapi

logger = logging.getLogger(__name__)

KIND = "Namespace"


class Reconciler(lifecycle.Kind):
    kind = KIND
    resource = injection.NAMESPACES
    condition_set = None

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api
        self.system_namespace = ctx.options.system_namespace

    async def reconcile(self, ns: kubeapi.Json, state: lifecycle.State) -> lifecycle.Outcome | None:
        if not injection.enabled(ns["metadata"].get("labels")):
            return lifecycle.Outcome.IGNORED
        name = ns["metadata"]["name"]
        await ensure_broker(self.api, self.system_namespace, name, injection.DEFAULT_BROKER)
        return None


async def ensure_broker(
    api: kubeapi.KubeApi, system_namespace: str, namespace: str, name: str
) -> bool:
    """Create the Broker `namespace/name` when it does not exist; True when created."""
    if await api.get_or_none(defaults.BROKERS, namespace, name) is not None:
        return False
    configmap = await api.get_or_none(
        backing.CONFIGMAPS, system_namespace, defaults.DEFAULTS_CONFIGMAP
    )
    try:
        broker_class = defaults.defaults_for(configmap, namespace, system_namespace).broker_class
    except defaults.DefaultsError:
        broker_class = defaults.MT_CLASS  # Knative: MTChannelBasedBroker when not configured
    try:
        await api.create(
            defaults.BROKERS, namespace, injection.broker(namespace, name, broker_class)
        )
    except kubeapi.Conflict:
        return False  # created meanwhile
    logger.info(
        "Injected Broker %s/%s (class %s).", namespace, name, broker_class,
        extra={"namespace": namespace, "object_name": name, "kind": "Broker"},
    )  # fmt: skip
    return True
