"""The minimal Knative Serving (Service -> Configuration -> Revision -> Deployment + Service)
against the real apiserver and node agent: the Revision names, labels and status users see,
a template change making `-00002` that takes over before `-00001` stops, v1alpha1 YAML, the
refused traffic split, and sink resolution of a `ksvc` ref."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from controller import availability
from controller.framework import discovery, sinks
from controller.serving import ownership, resources
from kevents import kubeapi
from tests.cluster import Kube
from tests.integration import controllers as c

pytestmark = pytest.mark.cluster

KINDS = ["Service", "Configuration", "Revision"]
DISPLAY = "gcr.io/knative-releases/knative.dev/eventing/cmd/event_display"


@pytest.fixture(scope="module")
def crds(kube: Kube) -> None:
    kube.install_crds(
        "services.serving.knative.dev",
        "configurations.serving.knative.dev",
        "revisions.serving.knative.dev",
        folder="manifests/serving",
    )


def ksvc(name: str, env: str = "one", version: str = "v1") -> str:
    return yaml.safe_dump({
        "apiVersion": f"serving.knative.dev/{version}", "kind": "Service",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"containers": [{
            "image": DISPLAY, "env": [{"name": "WHICH", "value": env}],
        }]}}},
    })  # fmt: skip


def ready(obj: dict[str, Any]) -> bool:
    return c.condition(obj, "Ready").get("status") == "True"


async def test_service_runs_revisions_and_a_new_template_takes_over(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    # SERVING=auto: the installed CRD is kevents' own, so the controller takes these kinds.
    assert await ownership.enabled(api, ownership.Mode.AUTO)
    kube.apply(ksvc("display"), ns)
    async with c.running(api_client, ns, KINDS):
        svc = await c.eventually(
            lambda: api.get(resources.SERVICES, ns, "display"), ready, within=90
        )
        url = f"http://display.{ns}.svc.cluster.local"
        assert svc["status"]["url"] == url
        assert svc["status"]["address"] == {"url": url}
        assert svc["status"]["latestCreatedRevisionName"] == "display-00001"
        assert svc["status"]["latestReadyRevisionName"] == "display-00001"
        assert c.statuses(svc) == {
            "ConfigurationsReady": "True",
            "RoutesReady": "True",
            "Ready": "True",
        }
        dep = await api.get(availability.DEPLOYMENTS, ns, "display-00001-deployment")
        pod = dep["spec"]["template"]
        assert pod["metadata"]["labels"][resources.SERVICE_LABEL] == "display"
        assert pod["metadata"]["labels"][resources.CONFIGURATION_LABEL] == "display"
        assert pod["metadata"]["labels"][resources.REVISION_LABEL] == "display-00001"
        user = pod["spec"]["containers"][0]
        assert user["name"] == "user-container"
        assert {"name": "PORT", "value": "8080"} in user["env"]
        core = await api.get(resources.CORE_SERVICES, ns, "display")
        assert core["spec"]["selector"] == {
            resources.SERVICE_LABEL: "display",
            resources.REVISION_LABEL: "display-00001",
        }

        # The ref resolves like any Addressable, as a source's sink or a Trigger's subscriber.
        resolver = sinks.Resolver(api, discovery.Discovery(api))
        ref: sinks.DestinationDict = {
            "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "display"}
        }
        assert (await resolver.resolve(ref, ns)).url == url

        kube.apply(ksvc("display", env="two"), ns)  # a new template -> a new Revision
        svc = await c.eventually(
            lambda: api.get(resources.SERVICES, ns, "display"),
            lambda s: s["status"].get("latestReadyRevisionName") == "display-00002" and ready(s),
            within=90,
        )
        assert svc["status"]["latestCreatedRevisionName"] == "display-00002"
        assert svc["status"]["traffic"] == [
            {"revisionName": "display-00002", "latestRevision": True, "percent": 100}
        ]
        core = await api.get(resources.CORE_SERVICES, ns, "display")
        assert core["spec"]["selector"][resources.REVISION_LABEL] == "display-00002"
        # The old revision leaves the route first, and stops its pod RESERVE_GRACE later.
        old = await c.eventually(
            lambda: api.get(availability.DEPLOYMENTS, ns, "display-00001-deployment"),
            lambda d: d["spec"]["replicas"] == 0,
            within=resources.RESERVE_GRACE + 30,
        )
        assert old["metadata"]["labels"][resources.REVISION_LABEL] == "display-00001"
        rev1 = await api.get(resources.REVISIONS, ns, "display-00001")
        assert rev1["metadata"]["labels"][resources.ROUTING_STATE_LABEL] == "reserve"
        # Leaving the route did not roll the old revision out again: the pod that served
        # until the switch is the one that drained and stopped, not a fresh replacement
        # started (and the serving one killed at once) when the routing state changed.
        assert resources.ROUTING_STATE_MODIFIED not in old["spec"]["template"]["metadata"].get(
            "annotations", {}
        )
        sets = await api.request(
            "GET", f"/apis/apps/v1/namespaces/{ns}/replicasets",
            query=[("labelSelector", f"{resources.REVISION_LABEL}=display-00001")],
        )  # fmt: skip
        assert len(sets["items"]) == 1, [r["metadata"]["name"] for r in sets["items"]]
        new = await api.get(availability.DEPLOYMENTS, ns, "display-00002-deployment")
        assert new["spec"]["replicas"] == 1
        assert {"name": "WHICH", "value": "two"} in new["spec"]["template"]["spec"]["containers"][
            0
        ]["env"]

        # The routed revision's pod is replaced (deleted, restarted elsewhere): the route stays
        # on it, never back to the older revision scaled to zero (Knative's
        # latestReadyRevisionName only moves forward); 00001 is not woken up meanwhile.
        (pod,) = (await api.request(
            "GET", f"/api/v1/namespaces/{ns}/pods",
            query=[("labelSelector", f"{resources.REVISION_LABEL}=display-00002")],
        ))["items"]  # fmt: skip
        kube.kubectl("delete", "pod", "-n", ns, pod["metadata"]["name"], "--wait=false")

        async def replaced() -> list[dict[str, Any]]:
            listed = await api.request(
                "GET", f"/api/v1/namespaces/{ns}/pods",
                query=[("labelSelector", f"{resources.REVISION_LABEL}=display-00002")],
            )  # fmt: skip
            return list(listed["items"])

        await c.eventually(
            replaced,
            lambda pods: any(
                p["metadata"]["uid"] != pod["metadata"]["uid"]
                and c.condition(p, "Ready").get("status") == "True"
                for p in pods
            ),
            within=90,
        )
        await c.eventually(
            lambda: api.get(resources.REVISIONS, ns, "display-00002"), ready, within=60
        )
        svc = await api.get(resources.SERVICES, ns, "display")
        assert svc["status"]["latestReadyRevisionName"] == "display-00002"
        core = await api.get(resources.CORE_SERVICES, ns, "display")
        assert core["spec"]["selector"][resources.REVISION_LABEL] == "display-00002"
        again1 = await api.get(resources.REVISIONS, ns, "display-00001")
        assert again1["metadata"]["labels"][resources.ROUTING_STATE_LABEL] == "reserve"
        assert (
            again1["metadata"]["annotations"][resources.ROUTING_STATE_MODIFIED]
            == rev1["metadata"]["annotations"][resources.ROUTING_STATE_MODIFIED]
        )  # never active in between

        # Only the annotations of the Service changed: no new Revision.
        kube.kubectl("annotate", "-n", ns, "ksvc/display", "example.com/note=hello")
        again = await c.eventually(
            lambda: api.get(resources.SERVICES, ns, "display"),
            lambda s: s["status"]["observedGeneration"] == s["metadata"]["generation"],
        )
        assert again["status"]["latestCreatedRevisionName"] == "display-00002"


async def test_v1alpha1_run_latest_yaml_is_served(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    old = {
        "apiVersion": "serving.knative.dev/v1alpha1", "kind": "Service",
        "metadata": {"name": "legacy"},
        "spec": {"runLatest": {"configuration": {"revisionTemplate": {"spec": {
            "container": {"image": DISPLAY},  # the 2019 docs' single container
        }}}}},
    }  # fmt: skip
    kube.apply(yaml.safe_dump(old), ns)
    async with c.running(api_client, ns, KINDS):
        svc = await c.eventually(
            lambda: api.get(resources.SERVICES, ns, "legacy"), ready, within=90
        )
        assert svc["status"]["latestReadyRevisionName"] == "legacy-00001"
        dep = await api.get(availability.DEPLOYMENTS, ns, "legacy-00001-deployment")
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == DISPLAY


@pytest.mark.parametrize(
    "traffic, message",
    [
        (
            [{"latestRevision": True, "percent": 50}, {"revisionName": "x-00001", "percent": 50}],
            "splitting traffic between several targets is not supported",
        ),
        ([{"revisionName": "x-00001", "percent": 100}], "no pinned revisionName"),
    ],
    ids=["split", "pinned"],
)
def test_traffic_it_cannot_honour_is_refused(
    kube: Kube, crds: None, namespace: str, traffic: list[dict[str, Any]], message: str
) -> None:
    body = yaml.safe_load(ksvc("x"))
    body["spec"]["traffic"] = traffic
    with pytest.raises(AssertionError) as refused:  # kube.kubectl: kubectl failed
        kube.apply(yaml.safe_dump(body), namespace)
    assert message in str(refused.value)
