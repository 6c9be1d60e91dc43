"""The objects and addresses of an MTChannelBasedBroker (pure).

The trigger channel is the contract with the dispatcher: a channel of the template's kind
named `<broker>-kne-trigger` in the Broker's namespace, labelled
`eventing.knative.dev/broker: <broker>` and `eventing.knative.dev/brokerEverything: "true"`,
with the template's spec and a controller owner reference to the Broker. Each Trigger
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


def trigger_channel_name(broker: str) -> str:
    """`<broker>-kne-trigger` (md5-shortened past 63 characters, as Knative's)."""
    return names.child_name(broker, TRIGGER_CHANNEL_SUFFIX)


def trigger_channel_labels(broker: str) -> dict[str, str]:
    return {BROKER_LABEL: broker, EVERYTHING_LABEL: "true"}


def trigger_channel(broker: kubeapi.Json, template: backing.TemplateDict) -> dict[str, Any]:
    meta = broker["metadata"]
    owner = reconciling.owner_reference(broker, defaults.API_VERSION, defaults.KIND)
    return backing.from_template(
        template, trigger_channel_name(meta["name"]), meta["namespace"], owner,
        labels=trigger_channel_labels(meta["name"]),
    )  # fmt: skip


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
