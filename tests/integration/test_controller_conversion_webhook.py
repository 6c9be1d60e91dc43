"""The legacy v1alpha1 versions against the real apiserver, converted by the controller's
webhook over TLS: the 2019 tutorial's YAML applied as written is accepted, stored as v1,
reconciled Ready, and read back at v1alpha1 as written; the webhook publishes its CA into the
CRDs; while it is down only v1alpha1 requests fail.

The CRDs are cluster-wide: for the test their conversion webhook is a `url:` on 127.0.0.1
(applied with kubectl, so the shipped manifests re-applied by any other test restore the
Service cleanly), and the shipped manifests are applied again afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import functools
import json
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from cryptography import x509
from kubernetes_asyncio import client

from controller.conversion import kinds
from controller.sinkbinding import webhook
from kevents import kubeapi
from tests.cluster import REPO, Kube
from tests.integration import controllers as c
from tests.integration import sinkbindinghooks as hooks
from tests.integration import test_controller_eventing as eventing

pytestmark = pytest.mark.cluster

crds = eventing.crds
CRDS = webhook.CONVERSION_CRDS
FILES = [REPO / "manifests" / f"300-{k.kind.lower()}.yaml" for k in kinds.KINDS]
ALL = ["Namespace", "Broker", "Trigger", "InMemoryChannel", "Subscription"]
TUTORIAL = """
apiVersion: v1
kind: Service
metadata: {name: event-display}
spec: {ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: eventing.knative.dev/v1alpha1
kind: Trigger
metadata:
  name: testevents-trigger
spec:
  filter:
    sourceAndType:
      type: dev.knative.apiserver.resource.add
      source: Any
  subscriber:
    ref:
      apiVersion: v1
      kind: Service
      name: event-display
---
apiVersion: eventing.knative.dev/v1alpha1
kind: Broker
metadata:
  name: shop
spec:
  channelTemplateSpec:
    apiVersion: messaging.knative.dev/v1alpha1
    kind: InMemoryChannel
---
apiVersion: messaging.knative.dev/v1alpha1
kind: InMemoryChannel
metadata:
  name: orders
---
apiVersion: messaging.knative.dev/v1alpha1
kind: InMemoryChannel
metadata:
  name: replies
---
apiVersion: messaging.knative.dev/v1alpha1
kind: Subscription
metadata:
  name: orders-sub
spec:
  channel:
    apiVersion: messaging.knative.dev/v1alpha1
    kind: InMemoryChannel
    name: orders
  subscriber:
    ref:
      apiVersion: v1
      kind: Service
      name: event-display
  reply:
    channel:
      apiVersion: messaging.knative.dev/v1alpha1
      kind: InMemoryChannel
      name: replies
"""


def manifests(url: str | None) -> str:
    """The shipped CRD manifests, their conversion webhook at `url` when given."""
    docs = []
    for path in FILES:
        doc = yaml.safe_load(path.read_text())
        if url is not None:
            doc = copy.deepcopy(doc)
            doc["spec"]["conversion"]["webhook"]["clientConfig"] = {"url": url}
        docs.append(yaml.safe_dump(doc))
    return "---\n".join(docs)


async def kubectl(kube: Kube, *args: str, **kw: Any) -> Any:
    """kubectl off the event loop: the apiserver calls back into this process's webhook."""
    return await asyncio.to_thread(kube.kubectl, *args, **kw)


def served(plural: str, proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode == 0 and plural in proc.stdout


@contextlib.asynccontextmanager
async def converting(kube: Kube, url: str) -> AsyncIterator[None]:
    await kubectl(kube, "apply", "-f", "-", input=manifests(url))
    for group, plural in (
        ("eventing.knative.dev", "triggers"),
        ("messaging.knative.dev", "subscriptions"),
    ):  # discovery has v1alpha1
        await c.eventually(
            functools.partial(kubectl, kube, "get", "--raw", f"/apis/{group}/v1alpha1",
                              check=False),
            functools.partial(served, plural),
        )  # fmt: skip
    try:
        yield
    finally:
        await kubectl(kube, "apply", "-f", "-", input=manifests(None))


@contextlib.asynccontextmanager
async def serving(api: kubeapi.KubeApi, namespace: str) -> AsyncIterator[webhook.Webhook]:
    """The controller's webhook component on 127.0.0.1, keeping the CRDs' caBundle."""
    options = webhook.Options(
        namespace, host="127.0.0.1", port=0, configuration="", validation="", defaulting="",
        conversion=CRDS, extra_hosts=("127.0.0.1",), check_interval=0.5,
    )  # fmt: skip
    hook = webhook.Webhook(api, options)
    task = asyncio.create_task(hook.run())
    try:
        await asyncio.wait_for(hook.wait_serving(), 30)
        yield hook
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def get(kube: Kube, resource: str, namespace: str, name: str) -> dict[str, Any]:
    """The object as kubectl reads it at the version `resource` names ({} when absent)."""
    out = await kubectl(kube, "get", resource, name, "-n", namespace, "-o", "json", check=False)
    if out.returncode != 0 and "NotFound" in out.stderr:
        return {}
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def ready(obj: dict[str, Any]) -> bool:
    return c.condition(obj, "Ready").get("status") == "True"


async def test_tutorial_v1alpha1_yaml_is_stored_as_v1_reconciled_and_reads_back_as_written(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    eventing.dispatcher_side(kube, ns)
    kube.kubectl("label", "namespace", ns, "knative-eventing-injection=enabled")
    async with serving(api, ns) as hook, converting(kube, f"https://127.0.0.1:{hook.port}/convert"):
        # The controller's CA is what the apiserver trusts for each CRD.
        assert hook.bundle is not None
        for name in CRDS:
            crd = await api.get(webhook.CRDS, None, name)
            config = crd["spec"]["conversion"]["webhook"]["clientConfig"]
            published = x509.load_pem_x509_certificates(base64.b64decode(config["caBundle"]))
            assert published[0] == x509.load_pem_x509_certificate(hook.bundle.ca_cert)
            assert crd["status"]["storedVersions"] == ["v1"]

        await kubectl(kube, "apply", "-n", ns, "-f", "-", input=TUTORIAL)
        async with c.running(api_client, ns, ALL):
            # Stored (and reconciled) as v1.
            trigger = await api.get(eventing.TRIGGERS, ns, "testevents-trigger")
            assert trigger["apiVersion"] == "eventing.knative.dev/v1"
            assert trigger["spec"]["broker"] == "default"
            assert trigger["spec"]["filter"] == {
                "attributes": {"type": "dev.knative.apiserver.resource.add"}
            }
            assert trigger["spec"]["subscriber"] == {
                "ref": {"apiVersion": "v1", "kind": "Service", "name": "event-display"}
            }
            sub = await api.get(eventing.SUBS, ns, "orders-sub")
            orders_v1 = {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
                         "name": "orders"}  # fmt: skip
            assert sub["spec"]["channel"] == orders_v1
            assert sub["spec"]["reply"] == {"ref": {**orders_v1, "name": "replies"}}

            # The `default` Broker of the 2019 label, read at v1alpha1.
            default = await c.eventually(
                lambda: get(kube, "brokers.v1alpha1.eventing.knative.dev", ns, "default"), ready
            )
            assert default["apiVersion"] == "eventing.knative.dev/v1alpha1"
            assert default["metadata"]["labels"] == {"eventing.knative.dev/injected": "true"}
            assert default["status"]["address"] == {
                "name": "http", "url": eventing.ingress(ns, "default"),
                "hostname": f"broker-ingress.{ns}.svc.cluster.local",
            }  # fmt: skip

            # The channels report their subscribers like the dispatcher; all turns Ready.
            for imc in ("default-kne-trigger", "orders"):
                channel = await c.eventually(
                    functools.partial(api.get, eventing.IMCS, ns, imc),
                    lambda o: bool(o.get("spec", {}).get("subscribers")),
                )
                eventing.report_ready(kube, ns, channel)
            old_trigger = await c.eventually(
                lambda: get(kube, "triggers.v1alpha1.eventing.knative.dev", ns,
                            "testevents-trigger"), ready,
            )  # fmt: skip
            old_sub = await c.eventually(
                lambda: get(kube, "subscriptions.v1alpha1.messaging.knative.dev", ns,
                            "orders-sub"), ready,
            )  # fmt: skip
            shop = await c.eventually(
                lambda: get(kube, "brokers.v1alpha1.eventing.knative.dev", ns, "shop"), ready
            )
            old_orders = await get(kube, "inmemorychannels.v1alpha1.messaging.knative.dev", ns,
                                   "orders")  # fmt: skip

        # Read back at v1alpha1 as written, with v1alpha1 status names.
        written = {d["metadata"]["name"]: d for d in yaml.safe_load_all(TUTORIAL)}
        assert old_trigger["spec"] == {"broker": "default", **written["testevents-trigger"]["spec"]}
        assert old_trigger["status"]["subscriberURI"] == c.service_url("event-display", ns)
        assert old_sub["spec"] == written["orders-sub"]["spec"]
        assert old_sub["status"]["physicalSubscription"]["subscriberURI"] == c.service_url(
            "event-display", ns
        )
        assert old_sub["status"]["physicalSubscription"]["replyURI"] == (
            f"http://replies-kn-channel.{ns}.svc.cluster.local"
        )
        assert shop["spec"] == written["shop"]["spec"]
        entries = old_orders["spec"]["subscribable"]["subscribers"]
        assert [e["subscriberURI"] for e in entries] == [c.service_url("event-display", ns)]
        assert old_orders["status"]["subscribableStatus"]["subscribers"][0]["ready"] == "True"
        yaml_out = await kubectl(kube, "get", "triggers.v1alpha1.eventing.knative.dev",
                                 "testevents-trigger", "-n", ns, "-o", "yaml")  # fmt: skip
        assert "sourceAndType" in yaml_out.stdout and "Any" in yaml_out.stdout
        table = await kubectl(kube, "get", "triggers.v1alpha1.eventing.knative.dev", "-n", ns)
        assert table.stdout.split("\n")[0].split() == [
            "NAME", "READY", "REASON", "BROKER", "SUBSCRIBER_URI", "AGE",
        ]  # fmt: skip

        # The old YAML applied again (an update at v1alpha1): the Broker's defaulted,
        # immutable spec.config survives, so the update is accepted.
        config = (await api.get(eventing.BROKERS, ns, "shop"))["spec"]["config"]
        changed = TUTORIAL.replace(
            "    kind: InMemoryChannel\n---\napiVersion: messaging.knative.dev/v1alpha1\n"
            "kind: InMemoryChannel\nmetadata:\n  name: orders",
            "    kind: InMemoryChannel\n  delivery: {retry: 2}\n---\n"
            "apiVersion: messaging.knative.dev/v1alpha1\nkind: InMemoryChannel\nmetadata:\n"
            "  name: orders",
        )
        assert changed != TUTORIAL
        await kubectl(kube, "apply", "-n", ns, "-f", "-", input=changed)
        stored = await api.get(eventing.BROKERS, ns, "shop")
        assert stored["spec"]["config"] == config
        assert stored["spec"]["delivery"] == {"retry": 2}


async def test_while_the_webhook_is_down_only_v1alpha1_requests_fail(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    async with converting(kube, f"https://127.0.0.1:{hooks.free_port()}/convert"):
        await api.create(eventing.TRIGGERS, ns, yaml.safe_load(eventing.trigger_yaml("t1")))
        listed = await kubectl(kube, "get", "triggers", "-n", ns, "-o", "name")
        assert listed.stdout.split() == ["trigger.eventing.knative.dev/t1"]
        down = await kubectl(kube, "get", "triggers.v1alpha1.eventing.knative.dev", "t1",
                             "-n", ns, check=False)  # fmt: skip
        kube.kubectl("delete", "trigger", "t1", "-n", ns)
    assert down.returncode != 0
    assert "conversion webhook for eventing.knative.dev/v1, Kind=Trigger failed" in down.stderr
