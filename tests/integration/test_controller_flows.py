"""Sequence and Parallel controllers against the real apiserver, in-process, with the
InMemoryChannel and Subscription controllers they build on.

The dispatcher's part is played by the test (`controllers.DISPATCHER`, and the channels'
`status.subscribers` reports patched as the dispatcher writes them). The test namespace is
also the system namespace.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes_asyncio import client

from controller.flows import resources
from controller.inmemorychannel import service
from kevents import kubeapi
from tests.cluster import Kube
from tests.integration import controllers as c

pytestmark = pytest.mark.cluster

IMCS, SUBS = service.INMEMORYCHANNELS, resources.SUBSCRIPTIONS
SEQUENCES, PARALLELS = resources.SEQUENCES, resources.PARALLELS
KINDS = ["Sequence", "Parallel", "InMemoryChannel", "Subscription"]
IMC = {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"}

SERVICES = "\n---\n".join(
    f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec: {{ports: [{{port: 80, targetPort: 8080}}]}}
"""
    for name in ("step-a", "step-b", "step-c", "final", "filter", "branch", "dls")
)
SEQUENCE = """
apiVersion: flows.knative.dev/v1
kind: Sequence
metadata: {name: build}
spec:
  steps:
  - ref: {apiVersion: v1, kind: Service, name: step-a}
  - ref: {apiVersion: v1, kind: Service, name: step-b}
    delivery:
      retry: 2
      backoffDelay: PT0.1S
      deadLetterSink: {ref: {apiVersion: v1, kind: Service, name: dls}}
  - ref: {apiVersion: v1, kind: Service, name: step-c}
  reply:
    ref: {apiVersion: v1, kind: Service, name: final}
"""
PARALLEL = """
apiVersion: flows.knative.dev/v1
kind: Parallel
metadata: {name: fan}
spec:
  channelTemplate: {apiVersion: messaging.knative.dev/v1, kind: InMemoryChannel}
  branches:
  - filter: {ref: {apiVersion: v1, kind: Service, name: filter}}
    subscriber: {ref: {apiVersion: v1, kind: Service, name: branch}}
  - subscriber: {ref: {apiVersion: v1, kind: Service, name: branch}, uri: /two}
    reply: {ref: {apiVersion: v1, kind: Service, name: final}, uri: /own}
  reply: {ref: {apiVersion: v1, kind: Service, name: final}}
"""


@pytest.fixture(scope="module")
def crds(kube: Kube) -> None:
    kube.install_crds(
        "sequences.flows.knative.dev",
        "parallels.flows.knative.dev",
        "subscriptions.messaging.knative.dev",
        "inmemorychannels.messaging.knative.dev",
    )


def report_ready(kube: Kube, namespace: str, imc: dict[str, Any]) -> None:
    """What the dispatcher does once it serves the subscribers: status.subscribers[]."""
    reports = [{"uid": s["uid"], "observedGeneration": s["generation"], "ready": "True"}
               for s in imc.get("spec", {}).get("subscribers", [])]  # fmt: skip
    kube.kubectl("patch", "inmemorychannel", imc["metadata"]["name"], "-n", namespace,
                 "--subresource=status", "--type=merge",
                 "-p", json.dumps({"status": {"subscribers": reports}}))  # fmt: skip


async def dispatch_all(
    kube: Kube, api: kubeapi.KubeApi, namespace: str, subscribers: dict[str, int]
) -> None:
    """Each channel, once all its subscribers are written in, reported served."""
    for name, count in subscribers.items():
        imc = await c.eventually(
            lambda n=name: api.get(IMCS, namespace, n),  # type: ignore[misc]
            lambda i, k=count: len(i.get("spec", {}).get("subscribers", [])) == k,  # type: ignore[misc]
        )
        report_ready(kube, namespace, imc)


def ready(obj: dict[str, Any]) -> bool:
    return c.condition(obj, "Ready").get("status") == "True"


def url(name: str, namespace: str) -> str:
    return f"http://{name}.{namespace}.svc.cluster.local"


async def test_sequence_makes_a_channel_and_subscription_per_step_and_is_ready_at_the_first(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply(c.DISPATCHER + "---" + SERVICES + "---" + SEQUENCE, namespace)
    async with c.running(api_client, namespace, KINDS):
        seq = await c.eventually(
            lambda: api.get(SEQUENCES, namespace, "build"),
            lambda s: len(s.get("status", {}).get("subscriptionStatuses", [])) == 3,
        )
        # The default template is written into the spec, as Knative's webhook does.
        assert seq["spec"]["channelTemplate"] == IMC
        uid = seq["metadata"]["uid"]
        names = [f"build-kn-sequence-{i}" for i in range(3)]
        for name in names:
            imc = await api.get(IMCS, namespace, name)
            owners = imc["metadata"]["ownerReferences"]
            assert [(o["kind"], o["name"], o["uid"], o["controller"]) for o in owners] == [
                ("Sequence", "build", uid, True)
            ]
        subs = [await api.get(SUBS, namespace, name) for name in names]
        for sub in subs:
            assert [o["uid"] for o in sub["metadata"]["ownerReferences"]] == [uid]
        assert [s["spec"]["channel"]["name"] for s in subs] == names
        assert [s["spec"]["subscriber"]["ref"]["name"] for s in subs] == [
            "step-a", "step-b", "step-c",
        ]  # fmt: skip
        assert [s["spec"]["reply"]["ref"]["name"] for s in subs] == [
            "build-kn-sequence-1", "build-kn-sequence-2", "final",
        ]  # fmt: skip
        assert subs[1]["spec"]["delivery"]["retry"] == 2
        await dispatch_all(kube, api, namespace, dict.fromkeys(names, 1))
        seq = await c.eventually(lambda: api.get(SEQUENCES, namespace, "build"), ready)
        assert c.statuses(seq) == {
            "Addressable": "True", "ChannelsReady": "True", "SubscriptionsReady": "True",
            "Ready": "True",
        }  # fmt: skip
        status = seq["status"]
        assert status["address"] == {"url": url("build-kn-sequence-0-kn-channel", namespace)}
        assert [s["channel"]["name"] for s in status["channelStatuses"]] == names
        assert [s["subscription"]["name"] for s in status["subscriptionStatuses"]] == names
        assert {s["ready"]["status"] for s in status["subscriptionStatuses"]} == {"True"}
        # What the channels were told: the step's Service, the next channel's address.
        imc1 = await api.get(IMCS, namespace, "build-kn-sequence-1")
        entry = imc1["spec"]["subscribers"][0]
        assert entry["subscriberUri"] == url("step-b", namespace)
        assert entry["replyUri"] == url("build-kn-sequence-2-kn-channel", namespace)
        assert entry["delivery"]["deadLetterSink"] == {"uri": url("dls", namespace)}
        printed = kube.kubectl("get", "sequences", "-n", namespace).stdout
        assert "build" in printed and url("build-kn-sequence-0-kn-channel", namespace) in printed
        assert "build" in kube.kubectl("get", "flows", "-n", namespace).stdout

        # One step fewer: the surplus Subscription goes, the last step replies to `final`.
        kube.kubectl("patch", "sequence", "build", "-n", namespace, "--type=json",
                     "-p", '[{"op": "remove", "path": "/spec/steps/2"}]')  # fmt: skip
        await c.eventually(
            lambda: api.get_or_none(SUBS, namespace, "build-kn-sequence-2"), lambda s: s is None
        )
        last = await api.get(SUBS, namespace, "build-kn-sequence-1")
        assert last["spec"]["reply"]["ref"]["name"] == "final"


async def test_parallel_filters_from_one_ingress_channel_into_a_channel_per_branch(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply(c.DISPATCHER + "---" + SERVICES + "---" + PARALLEL, namespace)
    async with c.running(api_client, namespace, KINDS):
        par = await c.eventually(
            lambda: api.get(PARALLELS, namespace, "fan"),
            lambda p: len(p.get("status", {}).get("branchStatuses", [])) == 2,
        )
        uid = par["metadata"]["uid"]
        channels = ["fan-kn-parallel", "fan-kn-parallel-0", "fan-kn-parallel-1"]
        for name in channels:
            imc = await api.get(IMCS, namespace, name)
            assert [o["uid"] for o in imc["metadata"]["ownerReferences"]] == [uid]
        f0 = await api.get(SUBS, namespace, "fan-kn-parallel-filter-0")
        f1 = await api.get(SUBS, namespace, "fan-kn-parallel-filter-1")
        s0 = await api.get(SUBS, namespace, "fan-kn-parallel-0")
        s1 = await api.get(SUBS, namespace, "fan-kn-parallel-1")
        assert f0["spec"]["channel"]["name"] == f1["spec"]["channel"]["name"] == "fan-kn-parallel"
        assert f0["spec"]["subscriber"]["ref"]["name"] == "filter"
        assert f0["spec"]["reply"]["ref"]["name"] == "fan-kn-parallel-0"
        assert f1["spec"]["subscriber"]["ref"]["name"] == "fan-kn-parallel-1"
        assert "reply" not in f1["spec"]
        assert s0["spec"]["reply"] == {"ref": {"apiVersion": "v1", "kind": "Service",
                                               "name": "final"}}  # fmt: skip
        assert s1["spec"]["reply"]["uri"] == "/own"
        await dispatch_all(kube, api, namespace, dict(zip(channels, (2, 1, 1), strict=True)))
        par = await c.eventually(lambda: api.get(PARALLELS, namespace, "fan"), ready)
        status = par["status"]
        assert status["address"] == {"url": url("fan-kn-parallel-kn-channel", namespace)}
        assert status["ingressChannelStatus"]["channel"]["name"] == "fan-kn-parallel"
        assert [
            (b["filterSubscriptionStatus"]["subscription"]["name"],
             b["filterChannelStatus"]["channel"]["name"],
             b["subscriberSubscriptionStatus"]["subscription"]["name"])
            for b in status["branchStatuses"]
        ] == [
            ("fan-kn-parallel-filter-0", "fan-kn-parallel-0", "fan-kn-parallel-0"),
            ("fan-kn-parallel-filter-1", "fan-kn-parallel-1", "fan-kn-parallel-1"),
        ]  # fmt: skip
        # What the ingress channel was told: the filter, with its reply into branch 0.
        ingress = await api.get(IMCS, namespace, "fan-kn-parallel")
        by_name = {e["name"]: e for e in ingress["spec"]["subscribers"]}
        assert by_name["fan-kn-parallel-filter-0"]["subscriberUri"] == url("filter", namespace)
        assert by_name["fan-kn-parallel-filter-0"]["replyUri"] == url(
            "fan-kn-parallel-0-kn-channel", namespace
        )
        assert by_name["fan-kn-parallel-filter-1"]["subscriberUri"] == url(
            "fan-kn-parallel-1-kn-channel", namespace
        )
        assert "fan" in kube.kubectl("get", "parallels", "-n", namespace).stdout


async def test_a_sequence_resolves_as_a_subscriptions_subscriber(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    """Addressable: a ref to a Sequence resolves to its first channel's address."""
    api = kubeapi.KubeApi(api_client)
    front = """
apiVersion: messaging.knative.dev/v1
kind: InMemoryChannel
metadata: {name: front}
---
apiVersion: messaging.knative.dev/v1
kind: Subscription
metadata: {name: into-sequence}
spec:
  channel: {apiVersion: messaging.knative.dev/v1, kind: InMemoryChannel, name: front}
  subscriber: {ref: {apiVersion: flows.knative.dev/v1, kind: Sequence, name: build}}
"""
    kube.apply(c.DISPATCHER + "---" + SERVICES + "---" + SEQUENCE + "---" + front, namespace)
    async with c.running(api_client, namespace, KINDS):
        sub = await c.eventually(
            lambda: api.get(SUBS, namespace, "into-sequence"),
            lambda s: bool(s.get("status", {}).get("physicalSubscription", {})),
        )
        assert sub["status"]["physicalSubscription"]["subscriberUri"] == url(
            "build-kn-sequence-0-kn-channel", namespace
        )
