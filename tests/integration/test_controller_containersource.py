"""The ContainerSource reconciler (with the SinkBinding one) against the real apiserver: the
owned SinkBinding and Deployment, Knative's conditions, template changes rolling out, and a
sink that only appears after the source."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from controller import availability
from controller.containersource import reconciler
from controller.sinkbinding import reconciler as sinkbinding
from kevents import kubeapi
from tests.cluster import Kube
from tests.integration import controllers as c
from tests.integration import test_controller_sinkbinding as base

pytestmark = pytest.mark.cluster

SOURCES = reconciler.CONTAINERSOURCES
DEPLOYMENTS = availability.DEPLOYMENTS
crds = base.crds


def source_yaml(image: str = "kevents/heartbeat:test", args: list[str] | None = None) -> str:
    body = {
        "apiVersion": "sources.knative.dev/v1", "kind": "ContainerSource",
        "metadata": {"name": "beats"},
        "spec": {
            "sink": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "event-display"}},
            "ceOverrides": {"extensions": {"team": "blue"}},
            "template": {"spec": {"containers": [{
                "name": "heartbeat", "image": image, "args": args or ["--period=1"],
                "env": [{"name": "POD_NAME", "value": "beats"},
                        {"name": "POD_NAMESPACE", "value": "demo"},
                        {"name": "CE_TYPE", "value": "dev.knative.eventing.samples.heartbeat"},
                        {"name": "CE_SOURCE", "value": "https://example.com/beats"}],
            }]}},
        },
    }  # fmt: skip
    return yaml.safe_dump(body)


def container(dep: dict[str, Any]) -> dict[str, Any]:
    return dict(dep["spec"]["template"]["spec"]["containers"][0])


async def test_source_owns_binding_and_deployment_and_rolls_out_changes(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(source_yaml(), ns)
    async with c.running(api_client, ns, ["SinkBinding", "ContainerSource"]):
        waiting = await c.eventually(
            lambda: api.get(SOURCES, ns, "beats"),
            lambda s: c.condition(s, "SinkBindingReady").get("status") == "False",
        )
        assert c.condition(waiting, "SinkBindingReady")["reason"] == "NotFound"
        assert c.condition(waiting, "ReceiveAdapterReady")["reason"] == "SinkNotResolved"
        assert await api.get_or_none(DEPLOYMENTS, ns, "beats-deployment") is None

        kube.apply(c.SINK_SERVICE, ns)  # the sink appears later (eventing-contrib#187)
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "beats"),
            lambda s: c.condition(s, "Ready").get("status") == "True",
            within=60,
        )
        url = c.service_url("event-display", ns)
        assert source["status"]["sinkUri"] == url
        assert source["status"]["ceAttributes"] == [{
            "type": "dev.knative.eventing.samples.heartbeat",
            "source": "https://example.com/beats",
        }]  # fmt: skip
        assert c.statuses(source) == {
            "ReceiveAdapterReady": "True", "Ready": "True", "SinkBindingReady": "True",
        }  # fmt: skip
        bound = await api.get(sinkbinding.SINKBINDINGS, ns, "beats-sinkbinding")
        assert bound["spec"]["subject"] == {
            "apiVersion": "apps/v1", "kind": "Deployment", "namespace": ns,
            "name": "beats-deployment",
        }  # fmt: skip
        uid = source["metadata"]["uid"]
        dep = await api.get(DEPLOYMENTS, ns, "beats-deployment")
        for child in (bound, dep):
            assert [r["uid"] for r in child["metadata"]["ownerReferences"]] == [uid]
        env = {e["name"]: e.get("value", "") for e in container(dep)["env"]}
        assert env["K_SINK"] == url
        assert env["K_CE_OVERRIDES"] == '{"extensions":{"team":"blue"}}'
        assert dep["metadata"]["generation"] == 1  # created bound: no second write at all

        # A new image and args roll out (eventing-contrib#28); the binding's env stays.
        kube.apply(source_yaml("gcr.io/knative-releases/knative.dev/eventing/cmd/heartbeats",
                               ["--period=2", "--label=changed"]), ns)  # fmt: skip
        rolled = await c.eventually(
            lambda: api.get(DEPLOYMENTS, ns, "beats-deployment"),
            lambda d: container(d)["args"] == ["--period=2", "--label=changed"],
        )
        assert container(rolled)["image"].endswith("cmd/heartbeats")
        assert {e["name"]: e.get("value") for e in container(rolled)["env"]}["K_SINK"] == url


def unnamed_yaml(container: dict[str, Any]) -> str:
    """What `kn source container create beats --image IMG --sink svc:event-display` sends:
    a container without a name."""
    body = {
        "apiVersion": "sources.knative.dev/v1", "kind": "ContainerSource",
        "metadata": {"name": "beats"},
        "spec": {
            "sink": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "event-display"}},
            "template": {"spec": {"containers": [container]}},
        },
    }  # fmt: skip
    return yaml.safe_dump(body)


async def test_unnamed_container_is_named_as_knative_does_and_becomes_ready(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, ns)
    kube.apply(unnamed_yaml({"image": "kevents/heartbeat:test"}), ns)
    async with c.running(api_client, ns, ["SinkBinding", "ContainerSource"]):
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "beats"),
            lambda s: c.condition(s, "Ready").get("status") == "True",
        )
    assert container(source)["name"] == "beats-0"
    dep = await api.get(DEPLOYMENTS, ns, "beats-deployment")
    assert container(dep)["name"] == "beats-0"


async def test_refused_deployment_is_reported_with_the_apiservers_words(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(c.SINK_SERVICE, ns)
    bad = {"name": "beat", "image": "kevents/heartbeat:test", "ports": [{"containerPort": 99999}]}
    kube.apply(unnamed_yaml(bad), ns)
    async with c.running(api_client, ns, ["SinkBinding", "ContainerSource"]):
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "beats"),
            lambda s: c.condition(s, "ReceiveAdapterReady").get("status") == "False",
        )
    cond = c.condition(source, "ReceiveAdapterReady")
    assert cond["reason"] == "Invalid"
    assert "spec.template.spec.containers[0].ports[0].containerPort" in cond["message"]
    assert c.condition(source, "Ready")["status"] == "False"
