"""EventTypes against the real apiserver: an ApiServerSource's types written as
`eventtypes.eventing.knative.dev` objects (Knative's source duck reconciler), and the
EventType reconciler's ReferenceExists/Ready, with the controller loops in-process."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from controller.apiserversource import reconciler as apiserversource
from controller.eventtype import reconciler
from controller.framework import eventtypes
from kevents import kubeapi
from tests.cluster import Kube
from tests.integration import controllers

pytestmark = pytest.mark.cluster

KINDS = ["ApiServerSource", "EventType"]
SOURCES = apiserversource.APISERVERSOURCES
RESOURCE_TYPES = [f"dev.knative.apiserver.resource.{v}" for v in ("add", "delete", "update")]
REF_TYPES = [f"dev.knative.apiserver.ref.{v}" for v in ("add", "delete", "update")]

SETUP = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: events-sa}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: event-watcher}
rules:
- {apiGroups: [""], resources: [events], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: event-watcher}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: event-watcher}
subjects: [{kind: ServiceAccount, name: events-sa, namespace: NS}]
---
apiVersion: v1
kind: Service
metadata: {name: display}
spec:
  selector: {app: display}
  ports: [{port: 80, targetPort: 8080}]
"""


@pytest.fixture(scope="module")
def crds(kube: Kube) -> None:
    kube.install_crds("apiserversources.sources.knative.dev", "eventtypes.eventing.knative.dev")


def source(name: str, sink: dict[str, Any], mode: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "sources.knative.dev/v1",
            "kind": "ApiServerSource",
            "metadata": {"name": name},
            "spec": {
                "serviceAccountName": "events-sa",
                "mode": mode,
                "resources": [{"apiVersion": "v1", "kind": "Event"}],
                "sink": sink,
            },
        }
    )


async def listed(api: kubeapi.KubeApi, namespace: str) -> list[dict[str, Any]]:
    found = await api.request("GET", eventtypes.EVENTTYPES.path(namespace))
    items: list[dict[str, Any]] = found.get("items") or []
    return items


def ready(items: list[dict[str, Any]], types: list[str]) -> bool:
    return sorted(e["spec"]["type"] for e in items) == types and all(
        controllers.condition(e, "Ready").get("status") == "True" for e in items
    )


async def test_source_eventtypes_follow_its_mode_and_are_ready(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply(SETUP.replace("NS", namespace), namespace)
    sink = {"ref": {"apiVersion": "v1", "kind": "Service", "name": "display"}}
    kube.apply(source("watcher", sink, "Resource"), namespace)
    async with controllers.running(api_client, namespace, KINDS):
        items = await controllers.eventually(
            lambda: listed(api, namespace), lambda i: ready(i, RESOURCE_TYPES)
        )
        src = await api.get(SOURCES, namespace, "watcher")
        uid, host = src["metadata"]["uid"], api.host
        for item in items:
            meta, spec = item["metadata"], item["spec"]
            # Knative's name, label, controller reference and spec.
            assert meta["name"] == eventtypes.name_for(spec["type"], host, "", uid)
            assert meta["labels"] == {"eventing.knative.dev/sourceName": "watcher"}
            (owner,) = meta["ownerReferences"]
            assert (owner["kind"], owner["name"], owner["uid"]) == (
                "ApiServerSource",
                "watcher",
                uid,
            )
            assert owner["controller"] is True
            assert spec["source"] == host
            assert spec["reference"] == {
                "apiVersion": "v1", "kind": "Service", "name": "display", "namespace": namespace,
            }  # fmt: skip
            assert controllers.condition(item, "ReferenceExists")["status"] == "True"

        # Another mode: the three resource types give way to the three ref types.
        kube.apply(source("watcher", sink, "Reference"), namespace)
        await controllers.eventually(lambda: listed(api, namespace), lambda i: ready(i, REF_TYPES))

        # A URI sink (Knative's rekt gives a broker's URL): the types stay, without reference;
        # an EventType with no reference is Ready (ReferenceNotSet).
        kube.apply(source("watcher", {"uri": "http://display.example/"}, "Reference"), namespace)
        await controllers.eventually(
            lambda: listed(api, namespace),
            lambda i: (
                ready(i, REF_TYPES)
                and all(
                    "reference" not in e["spec"]
                    and controllers.condition(e, "ReferenceExists").get("reason")
                    == "ReferenceNotSet"
                    for e in i
                )
            ),
        )


BROKER_EVENTTYPE = """
apiVersion: eventing.knative.dev/v1beta2
kind: EventType
metadata: {name: orders}
spec:
  type: com.example.order.created
  source: https://shop.example/orders
  reference: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: shop}
"""


async def test_eventtype_is_ready_once_its_broker_exists(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply(BROKER_EVENTTYPE, namespace)
    async with controllers.running(api_client, namespace, ["EventType"]):
        item = await controllers.eventually(
            lambda: api.get(reconciler.EVENTTYPES, namespace, "orders"),
            lambda e: controllers.condition(e, "Ready").get("status") == "False",
        )
        cond = controllers.condition(item, "ReferenceExists")
        assert (cond["status"], cond["reason"]) == ("False", "ResourceDoesNotExist")
        assert cond["message"] == "Resource in spec.reference does not exist"

        kube.apply(
            "{apiVersion: eventing.knative.dev/v1, kind: Broker, metadata: {name: shop}}", namespace
        )
        item = await controllers.eventually(
            lambda: api.get(reconciler.EVENTTYPES, namespace, "orders"),
            lambda e: controllers.condition(e, "Ready").get("status") == "True",
            within=15,
        )
    assert item["status"]["observedGeneration"] == item["metadata"]["generation"]
