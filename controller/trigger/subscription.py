"""The Subscription of a Trigger (pure) -- the contract with the dispatcher.

Knative's MTChannelBasedBroker (`pkg/reconciler/broker/trigger`, `resources/subscription.go`):

- name `<broker>-<trigger>-<uid>` (`kmeta.ChildName`: past 63 characters the name is cut
  and an md5 hash keeps it unique and stable), the Trigger's namespace, labels
  `eventing.knative.dev/broker` and `eventing.knative.dev/trigger`, a controller owner
  reference to the Trigger;
- `spec.channel`: the Broker's trigger channel (`{apiVersion, kind, name}`);
- `spec.subscriber.uri`: the shared broker filter,
  `http://broker-filter.<system-ns>.svc.cluster.local/triggers/<ns>/<trigger>/<uid>`,
  which matches the Trigger's filter and forwards to `status.subscriberUri`;
- `spec.reply.uri`: the Broker's ingress URL, so replies enter the Broker again;
- `spec.delivery`: the Trigger's delivery if set, else the Broker's, with the dead letter
  sink replaced by the resolved URI (the Trigger's, else the Broker's). A Trigger whose own
  delivery has no dead letter sink gets the Broker's in its Subscription too: Knative
  reports the Broker's in the Trigger's status but then delivers without one.
"""

from __future__ import annotations

from typing import Any

from controller.broker import resources
from controller.framework import dependencies, reconciling, sinks
from kevents import kubeapi, names

SUBSCRIPTIONS = kubeapi.Resource("messaging.knative.dev", "v1", "subscriptions")
TRIGGERS = kubeapi.Resource("eventing.knative.dev", "v1", "triggers")
API_VERSION = "eventing.knative.dev/v1"
KIND = "Trigger"
BROKER_LABEL = resources.BROKER_LABEL
TRIGGER_LABEL = "eventing.knative.dev/trigger"


def name(broker: str, trigger: str, uid: str) -> str:
    return names.child_name(f"{broker}-{trigger}-", uid)


def filter_uri(filter_service: str, system_namespace: str, trigger: kubeapi.Json) -> str:
    meta = trigger["metadata"]
    base = sinks.service_url(filter_service, system_namespace)
    return f"{base}/triggers/{meta['namespace']}/{meta['name']}/{meta['uid']}"


def delivery(
    trigger_delivery: dict[str, Any] | None,
    broker_delivery: dict[str, Any] | None,
    dead_letter_sink: dependencies.DeliveryStatusDict | None,
) -> dict[str, Any] | None:
    """The Trigger's delivery (else the Broker's) with the resolved dead letter sink."""
    chosen = trigger_delivery if trigger_delivery is not None else broker_delivery
    if chosen is None and dead_letter_sink is None:
        return None
    out = dict(chosen or {})
    out.pop("deadLetterSink", None)
    if dead_letter_sink is not None:
        dls: dict[str, str] = {"uri": dead_letter_sink["deadLetterSinkUri"]}
        if dead_letter_sink.get("deadLetterSinkCACerts"):
            dls["CACerts"] = dead_letter_sink["deadLetterSinkCACerts"]
        if dead_letter_sink.get("deadLetterSinkAudience"):
            dls["audience"] = dead_letter_sink["deadLetterSinkAudience"]
        out["deadLetterSink"] = dls
    return out


def subscription(
    trigger: kubeapi.Json,
    broker: str,
    channel: dict[str, str],
    subscriber_uri: str,
    reply_uri: str,
    delivery_spec: dict[str, Any] | None,
) -> dict[str, Any]:
    meta = trigger["metadata"]
    spec: dict[str, Any] = {
        "channel": {k: channel[k] for k in ("apiVersion", "kind", "name")},
        "subscriber": {"uri": subscriber_uri},
        "reply": {"uri": reply_uri},
    }
    if delivery_spec is not None:
        spec["delivery"] = delivery_spec
    return {
        "apiVersion": "messaging.knative.dev/v1",
        "kind": "Subscription",
        "metadata": {
            "name": name(broker, meta["name"], meta["uid"]),
            "namespace": meta["namespace"],
            "labels": {BROKER_LABEL: broker, TRIGGER_LABEL: meta["name"]},
            "ownerReferences": [reconciling.owner_reference(trigger, API_VERSION, KIND)],
        },
        "spec": spec,
    }
