"""The per-channel Service and address of an InMemoryChannel (pure).

Every channel gets a Service `<name>-kn-channel` (`kevents.names`: a long name is shortened
with an md5 as Knative's `kmeta.ChildName`) in its namespace of type ExternalName,
aliasing the shared dispatcher Service (`dispatcher.<system-ns>.svc.cluster.local`), as
Knative does. Senders resolve the channel's own DNS name, so the request's Host header
(`<name>-kn-channel.<ns>.svc.cluster.local`) tells the dispatcher which channel it is for;
no per-channel pods or endpoints exist. Cluster DNS (CoreDNS' kubernetes plugin) answers the
ExternalName with a CNAME and resolves it inside the zone; kube-proxy ignores such Services,
which is right: the traffic goes to the dispatcher Service's cluster IP.
"""

from __future__ import annotations

from typing import Any

from controller.framework import reconciling
from kevents import kubeapi, names

INMEMORYCHANNELS = kubeapi.Resource("messaging.knative.dev", "v1", "inmemorychannels")
SERVICES = kubeapi.Resource("", "v1", "services")
ENDPOINTSLICES = kubeapi.Resource("discovery.k8s.io", "v1", "endpointslices")
API_VERSION = "messaging.knative.dev/v1"
KIND = "InMemoryChannel"
ROLE_LABEL = "messaging.knative.dev/role"
ROLE = "in-memory-channel"
SUFFIX = names.CHANNEL_SERVICE_SUFFIX
CLUSTER_DOMAIN = "cluster.local"


def service_name(channel: str) -> str:
    """`<channel>-kn-channel`, md5-shortened to 63 characters as Knative's
    (`kevents.names.child_name`)."""
    return names.channel_service(channel)


def host(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"


def address(channel: str, namespace: str) -> dict[str, str]:
    """The http address (host-based routing): status.address and status.addresses[0]."""
    return {"name": "http", "url": f"http://{host(service_name(channel), namespace)}"}


def channel_service(
    imc: kubeapi.Json, dispatcher_service: str, system_namespace: str
) -> dict[str, Any]:
    """The desired ExternalName Service of `imc`, owned by it (garbage-collected with it)."""
    meta = imc["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {ROLE_LABEL: ROLE},
            "ownerReferences": [reconciling.owner_reference(imc, API_VERSION, KIND)],
        },
        "spec": {
            "type": "ExternalName",
            "externalName": host(dispatcher_service, system_namespace),
            "ports": [{"name": "http", "protocol": "TCP", "port": 80}],
        },
    }


def endpoints_ready(slices: list[kubeapi.Json]) -> bool:
    """Some endpoint of the slices is ready (a missing `ready` counts as ready)."""
    return any(
        (endpoint.get("conditions") or {}).get("ready") is not False
        for item in slices
        for endpoint in item.get("endpoints") or []
    )
