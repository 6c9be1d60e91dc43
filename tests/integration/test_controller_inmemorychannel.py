"""The InMemoryChannel controller against the real apiserver, its loop running in-process."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client

from controller.inmemorychannel import service
from kevents import kubeapi
from tests.cluster import Kube
from tests.integration import controllers as c

pytestmark = pytest.mark.cluster

IMCS = service.INMEMORYCHANNELS
IMC = """
apiVersion: messaging.knative.dev/v1
kind: InMemoryChannel
metadata: {name: orders}
spec:
  delivery:
    deadLetterSink: {ref: {apiVersion: v1, kind: Service, name: event-display}}
    retry: 3
"""


@pytest.fixture(scope="module")
def crds(kube: Kube) -> None:
    kube.install_crds("inmemorychannels.messaging.knative.dev")


async def test_channel_gets_service_address_and_ready_once_dispatcher_is_up(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply(IMC, namespace)
    async with c.running(api_client, namespace, ["InMemoryChannel"]):
        imc = await c.eventually(
            lambda: api.get(IMCS, namespace, "orders"),
            lambda o: c.condition(o, "DeadLetterSinkResolved").get("status") == "False",
        )
        # No dispatcher, no DLS Service yet: not ready, and the messages say why.
        assert c.condition(imc, "ServiceReady")["reason"] == "DispatcherServiceDoesNotExist"
        assert c.condition(imc, "EndpointsReady")["reason"] == "DispatcherEndpointsDoesNotExist"
        assert c.condition(imc, "DispatcherReady")["reason"] == "DispatcherDeploymentDoesNotExist"
        dls = c.condition(imc, "DeadLetterSinkResolved")
        assert dls["reason"] == "Unable to get the DeadLetterSink's URI"
        assert f'Service "{namespace}/event-display"' in dls["message"]
        assert c.condition(imc, "Ready")["status"] == "False"

        kube.apply(c.SINK_SERVICE + "---" + c.DISPATCHER, namespace)
        # DispatcherReady is informational (not part of Ready): it may follow a moment later,
        # when kcm has reported the new Deployment Available.
        imc = await c.eventually(
            lambda: api.get(IMCS, namespace, "orders"),
            lambda o: all(
                c.condition(o, kind).get("status") == "True"
                for kind in ("Ready", "DispatcherReady")
            ),
        )
    url = f"http://orders-kn-channel.{namespace}.svc.cluster.local"
    status = imc["status"]
    assert status["address"] == {"name": "http", "url": url}
    assert status["addresses"] == [{"name": "http", "url": url}]
    assert status["deadLetterSinkUri"] == c.service_url("event-display", namespace)
    assert status["observedGeneration"] == imc["metadata"]["generation"]
    assert c.statuses(imc) == {
        "Addressable": "True", "ChannelServiceReady": "True", "DeadLetterSinkResolved": "True",
        "DispatcherReady": "True", "EndpointsReady": "True", "EventPoliciesReady": "True",
        "Ready": "True", "ServiceReady": "True",
    }  # fmt: skip
    assert c.condition(imc, "EventPoliciesReady")["reason"] == "OIDCDisabled"
    svc = await api.get(service.SERVICES, namespace, "orders-kn-channel")
    assert svc["spec"]["type"] == "ExternalName"
    assert svc["spec"]["externalName"] == f"dispatcher.{namespace}.svc.cluster.local"
    assert svc["metadata"]["ownerReferences"][0]["uid"] == imc["metadata"]["uid"]
    printed = kube.kubectl("get", "imc", "orders", "-n", namespace).stdout
    assert url in printed


async def test_ready_turns_false_when_dispatcher_endpoints_go(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply(c.DISPATCHER, namespace)
    kube.apply(IMC.replace("  delivery:\n    deadLetterSink: {ref: {apiVersion: v1, kind: "
                           "Service, name: event-display}}\n    retry: 3\n", "  {}\n"),
               namespace)  # fmt: skip
    async with c.running(api_client, namespace, ["InMemoryChannel"]):
        imc = await c.eventually(
            lambda: api.get(IMCS, namespace, "orders"),
            lambda o: c.condition(o, "Ready").get("status") == "True",
        )
        assert c.condition(imc, "DeadLetterSinkResolved")["reason"] == "DeadLetterSinkNotConfigured"
        kube.kubectl("delete", "endpointslice", "dispatcher-fake", "-n", namespace)
        imc = await c.eventually(
            lambda: api.get(IMCS, namespace, "orders"),
            lambda o: c.condition(o, "Ready").get("status") == "False",
        )
    assert c.condition(imc, "Ready")["reason"] == "DispatcherEndpointsDoesNotExist"


async def test_foreign_service_with_the_channel_name_is_reported(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply(c.DISPATCHER, namespace)
    kube.kubectl("create", "service", "clusterip", "orders-kn-channel", "--tcp=80:8080",
                 "-n", namespace)  # fmt: skip
    kube.apply(IMC, namespace)
    async with c.running(api_client, namespace, ["InMemoryChannel"]):
        imc = await c.eventually(
            lambda: api.get(IMCS, namespace, "orders"),
            lambda o: c.condition(o, "ChannelServiceReady").get("status") == "False",
        )
    cond = c.condition(imc, "ChannelServiceReady")
    assert cond["reason"] == "NotOwned"
    assert cond["message"] == (
        "There is an existing Service 'orders-kn-channel' that we do not own "
        "(InMemoryChannel 'orders' is not its controller)."
    )
