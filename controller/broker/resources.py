"""The objects and addresses of an MTChannelBasedBroker (pure).

The trigger channel is the contract with the dispatcher: a channel of the template's kind
named `<broker>-kne-trigger` in the Broker's namespace, labelled
`eventing.knative.dev/broker: <broker>` and `eventing.knative.dev/brokerEverything: "true"`,
with the template's spec, a controller owner reference to the Broker, and the annotations
Knative gives it (`eventing.knative.dev/scope: cluster` and the Broker's own
`messaging.knative.dev*` ones, such as the async-handler switch). Each Trigger
subscribes to it; the shared broker ingress (`broker-ingress` in the system namespace)
sends every event into it; the address of the Broker is that ingress with the path
`/<namespace>/<broker>`. `status.annotations` records the channel (Knative's keys), which is
where the Trigger reconciler reads the channel reference from.
"""

from __future__ import annotations

from typing import Any

from controller.broker import defaults
from controller.channel import backing
from controller.framework import reconciling, sinks
from kevents import kubeapi, names

TRIGGER_CHANNEL_SUFFIX = "-kne-trigger"
BROKER_LABEL = "eventing.knative.dev/broker"
EVERYTHING_LABEL = "eventing.knative.dev/brokerEverything"
CHANNEL_ADDRESS = "knative.dev/channelAddress"
CHANNEL_API_VERSION = "knative.dev/channelAPIVersion"
CHANNEL_KIND = "knative.dev/channelKind"
CHANNEL_NAME = "knative.dev/channelName"
SCOPE_ANNOTATION = "eventing.knative.dev/scope"
SCOPE_CLUSTER = "cluster"
PROPAGATED_PREFIX = "messaging.knative.dev"
"""Broker annotations with keys of this prefix are copied onto its trigger channel."""


def trigger_channel_name(broker: str) -> str:
    """`<broker>-kne-trigger` (md5-shortened past 63 characters, as Knative's)."""
    return names.child_name(broker, TRIGGER_CHANNEL_SUFFIX)


def trigger_channel_labels(broker: str) -> dict[str, str]:
    return {BROKER_LABEL: broker, EVERYTHING_LABEL: "true"}


def trigger_channel_annotations(broker: kubeapi.Json) -> dict[str, str]:
    """Knative's MT broker (v0.49 `ReconcileKind`): `eventing.knative.dev/scope: cluster`,
    plus every annotation of the Broker whose key starts with `messaging.knative.dev` (e.g.
    `messaging.knative.dev/async-handler`, which the channel then follows)."""
    out = {SCOPE_ANNOTATION: SCOPE_CLUSTER}
    for key, value in ((broker["metadata"].get("annotations")) or {}).items():
        if key.startswith(PROPAGATED_PREFIX):
            out[key] = str(value)
    return out


def trigger_channel(broker: kubeapi.Json, template: backing.TemplateDict) -> dict[str, Any]:
    meta = broker["metadata"]
    owner = reconciling.owner_reference(broker, defaults.API_VERSION, defaults.KIND)
    channel = backing.from_template(
        template, trigger_channel_name(meta["name"]), meta["namespace"], owner,
        labels=trigger_channel_labels(meta["name"]),
    )  # fmt: skip
    channel["metadata"]["annotations"] = trigger_channel_annotations(broker)
    return channel


def ingress_url(service: str, system_namespace: str, namespace: str, broker: str) -> str:
    """`http://broker-ingress.<system-ns>.svc.cluster.local/<namespace>/<broker>`."""
    return f"{sinks.service_url(service, system_namespace)}/{namespace}/{broker}"


def address(url: str) -> dict[str, str]:
    return {"name": "http", "url": url}


def channel_annotations(template: backing.TemplateDict, name: str, url: str) -> dict[str, str]:
    return {
        CHANNEL_ADDRESS: url,
        CHANNEL_API_VERSION: template["apiVersion"],
        CHANNEL_KIND: template["kind"],
        CHANNEL_NAME: name,
    }


def channel_ref(broker: kubeapi.Json) -> dict[str, str] | None:
    """The trigger channel `{apiVersion, kind, name}` recorded in the Broker's status."""
    annotations = (broker.get("status") or {}).get("annotations") or {}
    ref = {
        "apiVersion": str(annotations.get(CHANNEL_API_VERSION) or ""),
        "kind": str(annotations.get(CHANNEL_KIND) or ""),
        "name": str(annotations.get(CHANNEL_NAME) or ""),
    }
    return ref if all(ref.values()) else None
