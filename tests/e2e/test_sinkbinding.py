"""SinkBinding and ContainerSource end to end with real pods: the controller (reconcilers and
TLS webhook) runs in-process, the heartbeat and event-display images run as pods on the node
agent, and events are read back from the event-display pod (GET /events on its pod IP).

The webhook is registered with a `url:` on 127.0.0.1 (the apiserver runs on the host) and
`failurePolicy: Ignore`, as the manifest ships it for the Service."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from controller import availability, context, manager
from controller.containersource import reconciler as containersource
from controller.framework import metrics
from controller.sinkbinding import reconciler, selection, webhook
from kevents import kubeapi
from tests.cluster import Kube
from tests.integration import controllers as c
from tests.integration import sinkbindinghooks as hooks
from tests.integration import test_controller_sinkbinding_selection as selected

pytestmark = pytest.mark.cluster

PODS = kubeapi.Resource("", "v1", "pods")
DEPLOYMENTS = availability.DEPLOYMENTS
BINDINGS = reconciler.SINKBINDINGS


def display(name: str) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: display
        image: kevents/event-display
        readinessProbe: {{httpGet: {{path: /health, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"""


HEARTBEAT_ENV = [
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
]
HEARTBEATS = yaml.safe_dump({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "heartbeats", "labels": {"role": "heartbeat"}},
    "spec": {"selector": {"matchLabels": {"app": "heartbeats"}},
             "template": {"metadata": {"labels": {"app": "heartbeats"}}, "spec": {
                 "terminationGracePeriodSeconds": 2,
                 "containers": [{"name": "beat", "image": "kevents/heartbeat",
                                 "args": ["--period=1", "--label=e2e"], "env": HEARTBEAT_ENV}]}}},
})  # fmt: skip
BYSTANDER = """
apiVersion: v1
kind: Pod
metadata: {name: bystander, labels: {role: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: web, image: busybox, command: [sleep, "3600"]}]
"""


def binding(sink: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "sources.knative.dev/v1", "kind": "SinkBinding",
        "metadata": {"name": "heartbeat-binding"},
        "spec": {"subject": {"apiVersion": "apps/v1", "kind": "Deployment",
                             "selector": {"matchLabels": {"role": "heartbeat"}}},
                 "sink": {"ref": {"apiVersion": "v1", "kind": "Service", "name": sink}}},
    })  # fmt: skip


@pytest.fixture(scope="module")
def crds(kube: Kube) -> None:
    kube.install_crds("sinkbindings.sources.knative.dev", "containersources.sources.knative.dev")


@pytest.fixture
async def system(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> AsyncIterator[kubeapi.KubeApi]:
    """Reconcilers + webhook in-process for `namespace` (opted in, failurePolicy Ignore)."""
    api = kubeapi.KubeApi(api_client)
    name = hooks.unique_name()
    async with (
        c.running(api_client, namespace, ["SinkBinding", "ContainerSource"]),
        hooks.serving(api, namespace, name) as hook,
        hooks.registered(kube, namespace, name, hook.port, "Ignore"),
    ):
        await c.eventually(
            lambda: api.get(webhook.CONFIGURATIONS, None, name),
            lambda m: bool(m["webhooks"][0]["clientConfig"].get("caBundle")),
        )
        yield api


async def events_at(api: kubeapi.KubeApi, ns: str, app: str) -> list[dict[str, Any]]:
    listed = await api.request("GET", PODS.path(ns), query=[("labelSelector", f"app={app}")])
    ips = [p["status"].get("podIP") for p in listed["items"] if p["status"].get("podIP")]
    out: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        for ip in ips:
            try:
                async with session.get(f"http://{ip}:8080/events") as response:
                    out.extend(await response.json())
            except (aiohttp.ClientError, TimeoutError):
                continue  # not listening yet: the caller polls again
    return out


def heartbeat_ids(events: list[dict[str, Any]], pod_prefix: str = "") -> dict[str, list[int]]:
    """Sequence ids by sending pod (the event source ends with `#<ns>/<pod>`)."""
    out: dict[str, list[int]] = {}
    for event in events:
        attrs = event["attributes"]
        if attrs.get("type") != "dev.knative.eventing.samples.heartbeat":
            continue
        pod = attrs["source"].rsplit("/", 1)[-1]
        if pod.startswith(pod_prefix):
            out.setdefault(pod, []).append(int(json.loads(event["data"])["id"]))
    return out


def in_order(ids: dict[str, list[int]], at_least: int) -> bool:
    return any(len(seq) >= at_least for seq in ids.values()) and all(
        seq == sorted(seq) and len(set(seq)) == len(seq) for seq in ids.values()
    )


def env_names(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env") or []}


async def live_pods(api: kubeapi.KubeApi, ns: str, app: str) -> list[dict[str, Any]]:
    listed = await api.request("GET", PODS.path(ns), query=[("labelSelector", f"app={app}")])
    return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]


async def test_heartbeats_reach_the_bound_sink_in_order_follow_a_new_sink_and_unbind(
    kube: Kube, namespace: str, system: kubeapi.KubeApi
) -> None:
    ns, api = namespace, system
    kube.apply(display("event-display") + "---" + display("other-display"), ns)
    kube.apply(BYSTANDER, ns)
    kube.apply(binding("event-display"), ns)
    await c.eventually(lambda: api.get(BINDINGS, ns, "heartbeat-binding"),
                       lambda b: c.condition(b, "Ready").get("status") == "True")  # fmt: skip
    kube.apply(HEARTBEATS, ns)

    # K_SINK resolves to the sink, and the heartbeats arrive there in sequence order.
    url = c.service_url("event-display", ns)
    await c.eventually(
        lambda: live_pods(api, ns, "heartbeats"),
        lambda ps: len(ps) == 1 and env_names(ps[0]).get("K_SINK") == url, within=60,
    )  # fmt: skip
    ids = await c.eventually(lambda: events_at(api, ns, "event-display"),
                             lambda evs: in_order(heartbeat_ids(evs), 3), within=60)  # fmt: skip
    first = heartbeat_ids(ids)
    assert any(seq[:3] == [1, 2, 3] for seq in first.values())

    # A new sink: the pods roll with the new URL and the events follow.
    kube.apply(binding("other-display"), ns)
    new_url = c.service_url("other-display", ns)
    await c.eventually(
        lambda: live_pods(api, ns, "heartbeats"),
        lambda ps: len(ps) == 1 and env_names(ps[0]).get("K_SINK") == new_url, within=60,
    )  # fmt: skip
    await c.eventually(lambda: events_at(api, ns, "other-display"),
                       lambda evs: in_order(heartbeat_ids(evs), 2), within=60)  # fmt: skip

    # Deleting the binding removes the env from the template, and the pods roll without it.
    await api.request("DELETE", BINDINGS.path(ns, "heartbeat-binding"))
    await c.eventually(
        lambda: api.get(DEPLOYMENTS, ns, "heartbeats"),
        lambda d: "K_SINK" not in {
            e["name"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
        },
    )  # fmt: skip
    await c.eventually(
        lambda: live_pods(api, ns, "heartbeats"),
        lambda ps: len(ps) == 1 and "K_SINK" not in env_names(ps[0]), within=60,
    )  # fmt: skip

    # The pod outside the subject was never touched.
    bystander = await api.get(PODS, ns, "bystander")
    assert env_names(bystander) == {}
    assert bystander["metadata"]["generation"] == 1


async def test_container_source_with_the_heartbeat_image_is_ready_and_its_events_arrive(
    kube: Kube, namespace: str, system: kubeapi.KubeApi
) -> None:
    ns, api = namespace, system
    kube.apply(display("event-display"), ns)
    kube.apply(yaml.safe_dump({
        "apiVersion": "sources.knative.dev/v1", "kind": "ContainerSource",
        "metadata": {"name": "heartbeat-source"},
        "spec": {
            "sink": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "event-display"}},
            "template": {"spec": {"containers": [{
                "name": "heartbeats",
                "image": "gcr.io/knative-releases/knative.dev/eventing/cmd/heartbeats:latest",
                "args": ["--period=1"], "env": HEARTBEAT_ENV}]}},
        },
    }), ns)  # fmt: skip
    source = await c.eventually(
        lambda: api.get(containersource.CONTAINERSOURCES, ns, "heartbeat-source"),
        lambda s: c.condition(s, "Ready").get("status") == "True", within=60,
    )  # fmt: skip
    assert source["status"]["sinkUri"] == c.service_url("event-display", ns)
    events = await c.eventually(
        lambda: events_at(api, ns, "event-display"),
        lambda evs: in_order(heartbeat_ids(evs, "heartbeat-source-deployment"), 3), within=60,
    )  # fmt: skip
    assert all(e["attributes"]["source"].startswith(
        f"https://knative.dev/eventing-contrib/cmd/heartbeats/#{ns}/heartbeat-source-deployment")
        for e in events)  # fmt: skip


@contextlib.asynccontextmanager
async def with_installed_dispatcher(api_client: client.ApiClient, ns: str) -> AsyncIterator[None]:
    """ContainerSource, SinkBinding, InMemoryChannel and Subscription reconcilers for `ns`,
    using the installed dispatcher in kevents-system (the test session pauses only the
    installed controller and ping adapter)."""
    options = context.Options(
        system_namespace="kevents-system", apiserver_adapter_image="unused",
        ping_adapter_image="unused", workers=2, namespace=ns,
    )  # fmt: skip
    mgr = manager.Manager(
        kubeapi.KubeApi(api_client), metrics.ControllerMetrics(CollectorRegistry()), options,
        kinds=["SinkBinding", "ContainerSource", "InMemoryChannel", "Subscription"],
    )  # fmt: skip
    task = asyncio.create_task(mgr.run())
    try:
        await asyncio.wait_for(mgr.wait_started(), 30)
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_container_source_events_reach_an_in_memory_channel_subscriber(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    dispatcher = await api.get_or_none(DEPLOYMENTS, "kevents-system", "kevents-dispatcher")
    if dispatcher is None or not availability.is_available(dispatcher):
        pytest.fail("the installed InMemoryChannel dispatcher (kevents-system) is not available")
    kube.apply(display("event-display"), ns)
    kube.apply(f"""
apiVersion: messaging.knative.dev/v1
kind: InMemoryChannel
metadata: {{name: beats}}
---
apiVersion: messaging.knative.dev/v1
kind: Subscription
metadata: {{name: beats-to-display}}
spec:
  channel: {{apiVersion: messaging.knative.dev/v1, kind: InMemoryChannel, name: beats}}
  subscriber: {{ref: {{apiVersion: v1, kind: Service, name: event-display}}}}
---
{yaml.safe_dump({
    "apiVersion": "sources.knative.dev/v1", "kind": "ContainerSource",
    "metadata": {"name": "heartbeat-source"},
    "spec": {
        "sink": {"ref": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
                         "name": "beats"}},
        "template": {"spec": {"containers": [{
            "name": "heartbeats", "image": "kevents/heartbeat",
            "args": ["--period=1"], "env": HEARTBEAT_ENV}]}},
    },
})}""", ns)  # fmt: skip
    try:
        async with with_installed_dispatcher(api_client, ns):
            source = await c.eventually(
                lambda: api.get(containersource.CONTAINERSOURCES, ns, "heartbeat-source"),
                lambda s: c.condition(s, "Ready").get("status") == "True", within=60,
            )  # fmt: skip
            assert source["status"]["sinkUri"] == (
                f"http://beats-kn-channel.{ns}.svc.cluster.local"
            )
            await c.eventually(
                lambda: events_at(api, ns, "event-display"),
                lambda evs: in_order(heartbeat_ids(evs, "heartbeat-source-deployment"), 3),
                within=90,
            )  # fmt: skip
    finally:
        with contextlib.suppress(kubeapi.NotFound):
            await api.merge_patch(
                kubeapi.Resource("messaging.knative.dev", "v1", "subscriptions"), ns,
                "beats-to-display", {"metadata": {"finalizers": None}},
            )  # fmt: skip


DOCS_CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: heartbeat-cron
spec:
  # Run every minute
  schedule: "*/1 * * * *"
  jobTemplate:
    metadata:
      labels:
        app: heartbeat-cron
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: single-heartbeat
              image: gcr.io/knative-nightly/knative.dev/eventing/cmd/heartbeats
              args:
              - --period=1
              env:
                - name: ONE_SHOT
                  value: "true"
                - name: POD_NAME
                  valueFrom:
                    fieldRef:
                      fieldPath: metadata.name
                - name: POD_NAMESPACE
                  valueFrom:
                    fieldRef:
                      fieldPath: metadata.namespace
"""
DOCS_SINKBINDING = """
apiVersion: sources.knative.dev/v1
kind: SinkBinding
metadata:
  name: bind-heartbeat
spec:
  subject:
    apiVersion: batch/v1
    kind: Job
    selector:
      matchLabels:
        app: heartbeat-cron
  sink:
    ref:
      apiVersion: v1
      kind: Service
      name: event-display
"""
"""The docs' "Create a SinkBinding" CronJob and SinkBinding as written (knative/docs
`eventing/custom-event-source/sinkbinding/create-a-sinkbinding.md`), in a namespace without
any label; only the sink is a core Service (no Knative Serving here)."""


async def test_docs_sinkbinding_cronjob_sample_unchanged_delivers_heartbeats(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    ns, api = namespace, kubeapi.KubeApi(api_client)
    kube.apply(display("event-display"), ns)
    async with (
        c.running(api_client, ns, ["SinkBinding"]),
        selected.webhook_in(kube, api, ns, selection.Mode.EXCLUSION),
    ):
        # kubectl in a thread: the webhook it reaches is served by this event loop.
        await asyncio.to_thread(kube.apply, DOCS_CRONJOB, ns)
        await asyncio.to_thread(kube.apply, DOCS_SINKBINDING, ns)
        # The CronJob fires at the next minute boundary; its Job's pod carries K_SINK.
        events = await c.eventually(
            lambda: events_at(api, ns, "event-display"),
            lambda evs: bool(heartbeat_ids(evs, "heartbeat-cron-")), within=150,
        )  # fmt: skip
        assert all(seq == [1] for seq in heartbeat_ids(events, "heartbeat-cron-").values())
        binding = await c.eventually(
            lambda: api.get(BINDINGS, ns, "bind-heartbeat"),
            lambda b: c.condition(b, "Ready").get("status") == "True",
        )
        assert binding["status"]["sinkUri"] == c.service_url("event-display", ns)
