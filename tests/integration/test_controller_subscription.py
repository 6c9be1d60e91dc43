"""Channel and Subscription controllers against the real apiserver, in-process.

The dispatcher's part (reporting each subscriber in the channel's `status.subscribers`) is
played by the test, which patches the InMemoryChannel's status like the dispatcher does.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes_asyncio import client

from controller.channel import backing
from controller.inmemorychannel import service
from controller.subscription import entry
from kevents import kubeapi
from tests.cluster import Kube
from tests.integration import controllers as c

pytestmark = pytest.mark.cluster

IMCS, SUBS, CHANNELS = service.INMEMORYCHANNELS, entry.SUBSCRIPTIONS, backing.CHANNELS
SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: handler}
spec: {ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: dls}
spec: {ports: [{port: 80, targetPort: 8080}]}
"""


def subscription_yaml(channel_kind: str, channel: str = "orders") -> str:
    return f"""
apiVersion: messaging.knative.dev/v1
kind: Subscription
metadata: {{name: to-handler}}
spec:
  channel: {{apiVersion: messaging.knative.dev/v1, kind: {channel_kind}, name: {channel}}}
  subscriber:
    ref: {{apiVersion: v1, kind: Service, name: handler}}
    uri: /events
  reply: {{uri: "http://replies.example.com/in"}}
  delivery:
    retry: 2
    backoffPolicy: linear
    backoffDelay: PT0.1S
    deadLetterSink: {{ref: {{apiVersion: v1, kind: Service, name: dls}}}}
"""


@pytest.fixture(scope="module")
def crds(kube: Kube) -> None:
    kube.install_crds(
        "subscriptions.messaging.knative.dev",
        "channels.messaging.knative.dev",
        "inmemorychannels.messaging.knative.dev",
    )


def report_ready(kube: Kube, namespace: str, imc: dict[str, Any]) -> None:
    """What the dispatcher does once it serves the subscribers: status.subscribers[]."""
    reports = [{"uid": s["uid"], "observedGeneration": s["generation"], "ready": "True"}
               for s in imc.get("spec", {}).get("subscribers", [])]  # fmt: skip
    kube.kubectl("patch", "inmemorychannel", imc["metadata"]["name"], "-n", namespace,
                 "--subresource=status", "--type=merge",
                 "-p", json.dumps({"status": {"subscribers": reports}}))  # fmt: skip


async def test_subscription_writes_resolved_entry_into_imc_and_removes_it_on_delete(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply(SERVICES, namespace)
    kube.apply("apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\n"
               "metadata: {name: orders}\n", namespace)  # fmt: skip
    kube.apply(subscription_yaml("InMemoryChannel"), namespace)
    async with c.running(api_client, namespace, ["Subscription"]):
        sub = await c.eventually(
            lambda: api.get(SUBS, namespace, "to-handler"),
            lambda s: c.condition(s, "AddedToChannel").get("status") == "True",
        )
        assert sub["metadata"]["finalizers"] == ["subscriptions.messaging.knative.dev"]
        assert c.condition(sub, "ChannelReady")["status"] == "Unknown"
        assert c.condition(sub, "ChannelReady")["reason"] == "SubscriptionNotMarkedReadyByChannel"
        assert c.condition(sub, "Ready")["status"] == "Unknown"
        imc = await api.get(IMCS, namespace, "orders")
        assert imc["spec"]["subscribers"] == [{
            "uid": sub["metadata"]["uid"], "generation": 1, "name": "to-handler",
            "subscriberUri": c.service_url("handler", namespace) + "/events",
            "replyUri": "http://replies.example.com/in",
            "delivery": {"retry": 2, "backoffPolicy": "linear", "backoffDelay": "PT0.1S",
                         "deadLetterSink": {"uri": c.service_url("dls", namespace)}},
        }]  # fmt: skip

        async def reported() -> dict[str, Any]:
            report_ready(kube, namespace, await api.get(IMCS, namespace, "orders"))
            return await api.get(SUBS, namespace, "to-handler")

        sub = await c.eventually(
            reported, lambda s: c.condition(s, "Ready").get("status") == "True"
        )
        assert c.statuses(sub) == {
            "AddedToChannel": "True", "ChannelReady": "True", "OIDCIdentityCreated": "True",
            "ReferencesResolved": "True", "Ready": "True",
        }  # fmt: skip
        assert sub["status"]["physicalSubscription"] == {
            "subscriberUri": c.service_url("handler", namespace) + "/events",
            "replyUri": "http://replies.example.com/in",
            "deadLetterSinkUri": c.service_url("dls", namespace),
        }

        kube.kubectl("delete", "subscription", "to-handler", "-n", namespace, "--wait=false")
        await c.eventually(
            lambda: api.request("GET", SUBS.path(namespace)),
            lambda listed: listed["items"] == [],
        )
        imc = await api.get(IMCS, namespace, "orders")
        assert imc["spec"]["subscribers"] == []


async def test_unresolvable_subscriber_is_reported_then_resolved_when_it_appears(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply("apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\n"
               "metadata: {name: orders}\n", namespace)  # fmt: skip
    kube.apply(subscription_yaml("InMemoryChannel"), namespace)
    async with c.running(api_client, namespace, ["Subscription"]):
        sub = await c.eventually(
            lambda: api.get(SUBS, namespace, "to-handler"),
            lambda s: c.condition(s, "ReferencesResolved").get("status") == "False",
        )
        cond = c.condition(sub, "ReferencesResolved")
        assert cond["reason"] == "SubscriberResolveFailed"
        assert cond["message"].startswith("Failed to resolve spec.subscriber: ")
        assert f'Service "{namespace}/handler"' in cond["message"]
        kube.apply(SERVICES, namespace)  # the subscription itself is not touched
        await c.eventually(
            lambda: api.get(SUBS, namespace, "to-handler"),
            lambda s: c.condition(s, "AddedToChannel").get("status") == "True",
        )


async def test_channel_creates_backing_imc_and_carries_subscriptions_down(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply(SERVICES + "---" + c.DISPATCHER, namespace)
    kube.apply("apiVersion: messaging.knative.dev/v1\nkind: Channel\n"
               "metadata: {name: orders}\n", namespace)  # fmt: skip
    kube.apply(subscription_yaml("Channel"), namespace)
    kinds = ["Channel", "InMemoryChannel", "Subscription"]
    async with c.running(api_client, namespace, kinds):
        channel = await c.eventually(
            lambda: api.get(CHANNELS, namespace, "orders"),
            lambda ch: c.condition(ch, "BackingChannelReady").get("status") == "True",
        )
        assert channel["spec"]["channelTemplate"] == {
            "apiVersion": "messaging.knative.dev/v1",
            "kind": "InMemoryChannel",
        }
        imc = await c.eventually(
            lambda: api.get(IMCS, namespace, "orders"),
            lambda o: len(o["spec"].get("subscribers", [])) == 1,
        )
        owner = imc["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "Channel",
            channel["metadata"]["uid"],
            True,
        )
        sub = await api.get(SUBS, namespace, "to-handler")
        assert imc["spec"]["subscribers"][0]["uid"] == sub["metadata"]["uid"]

        async def reported() -> dict[str, Any]:
            report_ready(kube, namespace, await api.get(IMCS, namespace, "orders"))
            return await api.get(SUBS, namespace, "to-handler")

        await c.eventually(reported, lambda s: c.condition(s, "Ready").get("status") == "True")
        channel = await c.eventually(
            lambda: api.get(CHANNELS, namespace, "orders"),
            lambda ch: c.condition(ch, "Ready").get("status") == "True",
        )
    url = f"http://orders-kn-channel.{namespace}.svc.cluster.local"
    assert channel["status"]["address"]["url"] == url
    assert channel["status"]["channel"] == {
        "apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
        "name": "orders", "namespace": namespace,
    }  # fmt: skip
    assert c.statuses(channel) == {
        "Addressable": "True", "BackingChannelReady": "True", "DeadLetterSinkResolved": "True",
        "EventPoliciesReady": "True", "Ready": "True",
    }  # fmt: skip
    assert [s["uid"] for s in channel["status"]["subscribers"]] == [sub["metadata"]["uid"]]


async def test_channel_template_default_comes_from_configmap(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    config = {"default-ch-config": f"namespaceDefaults:\n  {namespace}:\n"
              "    apiVersion: messaging.knative.dev/v1\n    kind: InMemoryChannel\n"
              "    spec: {delivery: {retry: 5}}\n"}  # fmt: skip
    kube.apply(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "default-ch-webhook"}, "data": config}),
               namespace)  # fmt: skip
    kube.apply("apiVersion: messaging.knative.dev/v1\nkind: Channel\n"
               "metadata: {name: orders}\n", namespace)  # fmt: skip
    async with c.running(api_client, namespace, ["Channel"]):
        imc = await c.eventually(lambda: api.get(IMCS, namespace, "orders"), lambda o: True)
    assert imc["spec"]["delivery"] == {"retry": 5}
