"""The old `sources.eventing.knative.dev/v1alpha1` kinds against the real apiserver, their
mirroring controllers (and today's controllers) running in-process: each old object owns the
`sources.knative.dev` object it mirrors into, gets its status copied back, and takes it along
when deleted (garbage collection by the kube-controller-manager)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from controller import availability
from controller.legacysources import reconciler as legacy
from kevents import kubeapi
from tests.cluster import REPO, Kube
from tests.integration import controllers as c
from tests.integration import test_controller_apiserversource as apiserver

pytestmark = pytest.mark.cluster

OLD_APISERVERSOURCES = legacy.legacy("apiserversources")
OLD_EVENTSOURCES = legacy.legacy("kuberneteseventsources")
OLD_CONTAINERSOURCES = legacy.legacy("containersources")
OLD_PUBSUB = legacy.legacy("gcppubsubsources")
V1_APISERVERSOURCES = legacy.V1_APISERVERSOURCES
V1_CONTAINERSOURCES = legacy.V1_CONTAINERSOURCES
LEGACY = REPO / "manifests" / "legacy"
OLD_SINK = {"apiVersion": "v1", "kind": "Service", "name": "event-display"}
CRD_FILES = (
    "300-apiserversource.yaml", "300-containersource.yaml", "300-sinkbinding.yaml",
    "300-githubsource.yaml",
    *(f"legacy/{p.name}" for p in (REPO / "manifests" / "legacy").glob("300-*.yaml")),
)  # fmt: skip


@pytest.fixture(scope="module")
def crds(kube: Kube) -> Iterator[None]:
    """Today's source CRDs and the old group's (opt-in), removed again afterwards: while the
    old group is served, a plain `kubectl get apiserversources` on the shared cluster
    resolves to it."""
    kube.kubectl("apply", *(f"--filename={REPO / 'manifests' / f}" for f in CRD_FILES))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 "crd/kuberneteseventsources.sources.eventing.knative.dev",
                 "crd/apiserversources.sources.eventing.knative.dev",
                 "crd/containersources.sources.eventing.knative.dev",
                 "crd/gcppubsubsources.sources.eventing.knative.dev")  # fmt: skip
    try:
        yield
    finally:
        uninstall(kube)


def legacy_resources() -> list[str]:
    """The old group's resources (`<plural>.<group>`, the names of their CRDs)."""
    return sorted(
        str(doc["metadata"]["name"])
        for path in LEGACY.glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "CustomResourceDefinition"
    )


def uninstall(kube: Kube) -> None:
    """Remove the old group's objects, then its CRDs, then refresh kubectl's discovery cache
    (shared by every kubectl of this user): one read while the old group was served would
    otherwise keep mapping `apiserversources` to it after it is gone.

    The objects go first, listed through their served storage: a CRD deleted while its
    storage is still (re)initializing (a test of a few seconds after `apply`) makes the
    apiserver's CRD finalizer fail its list with 429, and its retry can lose the CRD (a
    conflict on its own status write, not requeued) until the informer's resync minutes
    later: CI's `kubectl delete --wait` ran past 120 s. kubectl waits out the 429 of its own
    list; with no objects left, the finalizer has nothing to delete or wait for."""
    present = kube.kubectl(
        "get", "crd", "--ignore-not-found", "-o", "name", *legacy_resources()
    ).stdout.split()
    if present:
        resources = ",".join(name.removeprefix("customresourcedefinition.apiextensions.k8s.io/")
                             for name in present)  # fmt: skip
        kube.kubectl("delete", resources, "--all", "--all-namespaces", "--wait=true")
    kube.kubectl("delete", "--wait=true", "--ignore-not-found", f"--filename={LEGACY}")
    # Only to refresh the cache: right after a CRD is removed, discovery of some group may
    # fail for a moment (exit 1, "unable to retrieve the complete list of server APIs").
    kube.kubectl("api-resources", check=False)


def old(kind: str, name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump({
        "apiVersion": "sources.eventing.knative.dev/v1alpha1", "kind": kind,
        "metadata": {"name": name}, "spec": spec,
    })  # fmt: skip


def owner_of(obj: dict[str, Any]) -> tuple[str, str, str]:
    (ref,) = obj["metadata"]["ownerReferences"]
    assert ref["controller"] is True and ref["blockOwnerDeletion"] is True
    return ref["apiVersion"], ref["kind"], ref["name"]


def conditions_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(obj.get("status", {}).get("conditions", []), key=lambda x: x["type"])


async def gone(api: kubeapi.KubeApi, resource: kubeapi.Resource, ns: str, name: str) -> None:
    await c.eventually(lambda: api.get_or_none(resource, ns, name), lambda o: o is None, 60)


async def test_old_apiserversource_mirrors_copies_status_and_takes_the_new_one_along(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(apiserver.rbac_yaml(ns, ["get", "list", "watch"]) + "---\n" + c.SINK_SERVICE, ns)
    kube.apply(old("ApiServerSource", "testevents", {
        "serviceAccountName": "events-sa", "mode": "Ref",
        "resources": [{"apiVersion": "v1", "kind": "Event",
                       "labelSelector": {"matchLabels": {"app": "x"}}}],
        "sink": OLD_SINK,
    }), ns)  # fmt: skip
    kinds = ["ApiServerSource", "ApiServerSource.sources.eventing.knative.dev"]
    async with c.running(api_client, ns, kinds):
        new = await c.eventually(
            lambda: api.get(V1_APISERVERSOURCES, ns, "testevents"),
            lambda s: c.condition(s, "SinkProvided").get("status") == "True",
        )
        assert owner_of(new) == (legacy.API_VERSION, "ApiServerSource", "testevents")
        assert new["spec"]["mode"] == "Reference"
        assert new["spec"]["serviceAccountName"] == "events-sa"
        assert new["spec"]["resources"] == [
            {"apiVersion": "v1", "kind": "Event", "selector": {"matchLabels": {"app": "x"}}}
        ]
        assert new["spec"]["sink"] == {"ref": OLD_SINK}
        # The old object shows what the new one says, conditions included.
        mirrored = await c.eventually(
            lambda: api.get(OLD_APISERVERSOURCES, ns, "testevents"),
            lambda s: s.get("status", {}).get("sinkUri") == c.service_url("event-display", ns),
        )
        new = await api.get(V1_APISERVERSOURCES, ns, "testevents")
        await c.eventually(
            lambda: api.get(OLD_APISERVERSOURCES, ns, "testevents"),
            lambda s: conditions_of(s) == conditions_of(new) and conditions_of(s) != [],
        )
        assert {x["type"] for x in conditions_of(mirrored)} >= {
            "Ready", "SinkProvided", "SufficientPermissions", "Deployed",
        }  # fmt: skip
        assert mirrored["status"]["ceAttributes"][0]["type"] == "dev.knative.apiserver.ref.add"
        # `kubectl get` at the old group prints the copied columns.
        table = kube.kubectl(
            "get", "apiserversources.v1alpha1.sources.eventing.knative.dev", f"-n={ns}"
        ).stdout
        assert "testevents" in table and c.service_url("event-display", ns) in table

        # A spec change of the old object reaches the new one.
        await api.merge_patch(
            OLD_APISERVERSOURCES, ns, "testevents", {"spec": {"mode": "Resource"}}
        )
        await c.eventually(
            lambda: api.get(V1_APISERVERSOURCES, ns, "testevents"),
            lambda s: s["spec"]["mode"] == "Resource",
        )
        await api.delete(OLD_APISERVERSOURCES, ns, "testevents")
        await gone(api, V1_APISERVERSOURCES, ns, "testevents")


async def test_kubernetes_event_source_becomes_an_event_apiserversource_in_resource_mode(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, ns)
    kube.apply(old("KubernetesEventSource", "k8sevents", {
        "namespace": ns, "serviceAccountName": "events-sa", "sink": OLD_SINK,
    }), ns)  # fmt: skip
    kinds = ["ApiServerSource", "KubernetesEventSource.sources.eventing.knative.dev"]
    async with c.running(api_client, ns, kinds):
        new = await c.eventually(
            lambda: api.get(V1_APISERVERSOURCES, ns, "k8sevents-k8sevents"),
            lambda s: c.condition(s, "SinkProvided").get("status") == "True",
        )
        assert owner_of(new) == (legacy.API_VERSION, "KubernetesEventSource", "k8sevents")
        assert new["spec"]["resources"] == [{"apiVersion": "v1", "kind": "Event"}]
        assert new["spec"]["mode"] == "Resource"
        assert "namespaceSelector" not in new["spec"]
        # No ServiceAccount exists: the new object says so, and so does the old one.
        source = await c.eventually(
            lambda: api.get(OLD_EVENTSOURCES, ns, "k8sevents"),
            lambda s: c.condition(s, "SufficientPermissions").get("status") == "False",
        )
        assert c.condition(source, "Ready")["status"] == "False"
        assert "events-sa" in c.condition(source, "Ready")["message"]
        assert source["status"]["sinkUri"] == c.service_url("event-display", ns)


async def test_old_containersource_runs_its_image_with_the_sink_as_argument(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(old("ContainerSource", "test-heartbeats", {
        "image": "github.com/knative/eventing-sources/cmd/heartbeats",
        "args": ["--label=<3", "--period=1"],
        "env": [{"name": "POD_NAME", "value": "mypod"},
                {"name": "POD_NAMESPACE", "value": "event-test"}],
        "sink": OLD_SINK,
    }), ns)  # fmt: skip
    kinds = ["SinkBinding", "ContainerSource", "ContainerSource.sources.eventing.knative.dev"]
    async with c.running(api_client, ns, kinds):
        # No sink yet: said on the old object, nothing mirrored.
        waiting = await c.eventually(
            lambda: api.get(OLD_CONTAINERSOURCES, ns, "test-heartbeats"),
            lambda s: c.condition(s, "Ready").get("status") == "False",
        )
        assert c.condition(waiting, "Ready")["reason"] == "NotFound"
        assert await api.get_or_none(V1_CONTAINERSOURCES, ns, "test-heartbeats") is None

        kube.apply(c.SINK_SERVICE, ns)  # the sink appears: the tracker wakes the source
        url = c.service_url("event-display", ns)
        new = await c.eventually(
            lambda: api.get(V1_CONTAINERSOURCES, ns, "test-heartbeats"),
            lambda s: bool(s.get("spec")),
        )
        assert owner_of(new) == (legacy.API_VERSION, "ContainerSource", "test-heartbeats")
        (ctr,) = new["spec"]["template"]["spec"]["containers"]
        assert ctr["image"] == "github.com/knative/eventing-sources/cmd/heartbeats"
        assert ctr["args"] == ["--label=<3", "--period=1", f"--sink={url}"]
        dep = await c.eventually(
            lambda: api.get(availability.DEPLOYMENTS, ns,
                            "test-heartbeats-deployment"),
            lambda d: True,
        )  # fmt: skip
        (run,) = dep["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in run["env"]}
        assert f"--sink={url}" in run["args"]
        assert env["K_SINK"] == url and env["SINK"] == url and env["POD_NAME"] == "mypod"
        source = await c.eventually(
            lambda: api.get(OLD_CONTAINERSOURCES, ns, "test-heartbeats"),
            lambda s: c.condition(s, "SinkBindingReady").get("status") == "True",
        )
        assert source["status"]["sinkUri"] == url

        await api.delete(OLD_CONTAINERSOURCES, ns, "test-heartbeats")
        await gone(api, V1_CONTAINERSOURCES, ns, "test-heartbeats")


async def test_gcp_pubsub_source_is_accepted_and_says_it_cannot_work_here(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(old("GcpPubSubSource", "testsource", {
        "googleCloudProject": "my-project", "topic": "testing",
        "gcpCredsSecret": {"name": "google-cloud-key", "key": "key.json"}, "sink": OLD_SINK,
    }), ns)  # fmt: skip
    async with c.running(api_client, ns, ["GcpPubSubSource.sources.eventing.knative.dev"]):
        source = await c.eventually(
            lambda: api.get(OLD_PUBSUB, ns, "testsource"),
            lambda s: c.condition(s, "Ready").get("status") == "False",
        )
    ready = c.condition(source, "Ready")
    assert ready["reason"] == "GoogleCloudUnavailable"
    assert "Google Cloud Pub/Sub" in ready["message"]


async def test_an_apiserversource_the_old_one_does_not_own_is_left_alone(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(apiserver.source_yaml("taken", sink=apiserver.SINK_REF), ns)
    kube.apply(old("ApiServerSource", "taken", {
        "resources": [{"apiVersion": "v1", "kind": "Pod"}], "sink": OLD_SINK,
    }), ns)  # fmt: skip
    async with c.running(api_client, ns, ["ApiServerSource.sources.eventing.knative.dev"]):
        source = await c.eventually(
            lambda: api.get(OLD_APISERVERSOURCES, ns, "taken"),
            lambda s: c.condition(s, "Ready").get("status") == "False",
        )
    assert c.condition(source, "Ready")["reason"] == "NotOwned"
    assert c.condition(source, "Ready")["message"] == (
        "There is an existing ApiServerSource 'taken' that we do not own "
        "(ApiServerSource 'taken' is not its controller)."
    )
    mine = await api.get(V1_APISERVERSOURCES, ns, "taken")
    assert mine["spec"]["resources"] == [{"apiVersion": "v1", "kind": "Event"}]
    assert "ownerReferences" not in mine["metadata"]


async def test_old_githubsource_mirrors_into_todays_with_its_secrets_and_sink(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    secret = {"secretKeyRef": {"name": "githubsecret", "key": "accessToken"}}
    token = {"secretKeyRef": {"name": "githubsecret", "key": "secretToken"}}
    kube.apply(old("GitHubSource", "githubsourcesample", {
        "eventTypes": ["pull_request"], "ownerAndRepository": "knative-demo/eventing-sources",
        "accessToken": secret, "secretToken": token, "sink": OLD_SINK,
    }), ns)  # fmt: skip
    async with c.running(api_client, ns, ["GitHubSource.sources.eventing.knative.dev"]):
        new = await c.eventually(
            lambda: api.get(legacy.V1ALPHA1_GITHUBSOURCES, ns, "githubsourcesample"),
            lambda s: bool(s.get("spec")),
        )
        waiting = await c.eventually(
            lambda: api.get(legacy.legacy("githubsources"), ns, "githubsourcesample"),
            lambda s: c.condition(s, "Ready").get("reason") == "Mirroring",
        )
    assert owner_of(new) == (legacy.API_VERSION, "GitHubSource", "githubsourcesample")
    assert new["spec"] == {
        "eventTypes": ["pull_request"], "ownerAndRepository": "knative-demo/eventing-sources",
        "accessToken": secret, "secretToken": token, "sink": {"ref": OLD_SINK},
    }  # fmt: skip
    assert c.condition(waiting, "Ready")["status"] == "Unknown"
