"""The event recorder (`kevents.kubeevents`) against the real apiserver, as the node agent's
identity (`system:node:<node>`, Node authorizer): what `kubectl describe` and both Event APIs
show, and the correlation that keeps a crash loop from flooding (an injected clock)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from hack.agent import kubeconfig
from hack.localcluster import node as localnode
from kevents import kubeapi, kubeevents, metrics
from tests import waiting
from tests.cluster import Kube

pytestmark = pytest.mark.cluster

T0 = 1_800_000_000.0
KUBELET = kubeevents.Source("kubelet", localnode.NODE_NAME)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def pod_ref(namespace: str, name: str = "crasher") -> kubeevents.ObjectReference:
    return kubeevents.ObjectReference(
        apiVersion="v1", kind="Pod", namespace=namespace, name=name, uid=f"uid-{name}",
        fieldPath="spec.containers{app}",
    )  # fmt: skip


@pytest.fixture
async def node_api(kube: Kube) -> AsyncIterator[kubeapi.KubeApi]:
    assert kube.state_dir is not None, "needs the local cluster's node identity"
    async with kubeconfig.connect(kube.state_dir / "node.kubeconfig") as api:
        yield api


async def recorded(
    node_api: kubeapi.KubeApi, clock: Clock, calls: list[tuple[str, str, str]], ns: str
) -> kubeevents.Recorder:
    registry = CollectorRegistry()
    recorder = kubeevents.Recorder(
        node_api, event_metrics=metrics.KubeEventMetrics(registry), clock=clock
    )
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(recorder.run())
        for type_, reason, message in calls:
            recorder.event(KUBELET, pod_ref(ns), type_, reason, message)
            await recorder.flush()
            clock.now += 10
        task.cancel()
    return recorder


async def core_events(api_client: client.ApiClient, ns: str) -> list[dict[str, Any]]:
    admin = kubeapi.KubeApi(api_client)
    listed = await admin.request("GET", kubeevents.EVENTS.path(ns))
    return sorted(listed["items"], key=lambda e: str(e["message"]))


async def test_a_repeated_backoff_is_one_event_with_its_count_in_both_event_apis(
    node_api: kubeapi.KubeApi, api_client: client.ApiClient, namespace: str, kube: Kube
) -> None:
    message = f"Back-off restarting failed container app in pod crasher_{namespace}(uid-crasher)"
    await recorded(node_api, Clock(), [("Warning", "BackOff", message)] * 3, namespace)

    (event,) = await core_events(api_client, namespace)
    assert event["count"] == 3
    assert event["firstTimestamp"] == kubeevents.timestamp(T0)
    assert event["lastTimestamp"] == kubeevents.timestamp(T0 + 20)
    assert event["source"] == {"component": "kubelet", "host": localnode.NODE_NAME}
    assert event["reportingComponent"] == "kubelet"
    assert event["reportingInstance"] == localnode.NODE_NAME
    assert event["involvedObject"]["fieldPath"] == "spec.containers{app}"
    assert (event["type"], event["reason"], event["message"]) == ("Warning", "BackOff", message)

    admin = kubeapi.KubeApi(api_client)
    new_api = kubeapi.Resource("events.k8s.io", "v1", "events")
    (seen,) = (await admin.request("GET", new_api.path(namespace)))["items"]
    assert seen["reportingController"] == "kubelet"
    assert seen["reportingInstance"] == localnode.NODE_NAME
    assert seen["regarding"]["name"] == "crasher"
    assert seen["regarding"]["fieldPath"] == "spec.containers{app}"
    assert seen["note"] == message
    assert seen["deprecatedCount"] == 3

    shown = kube.kubectl("get", "events", "-n", namespace).stdout
    assert "BackOff" in shown and "pod/crasher" in shown


async def test_more_than_ten_different_probe_failures_are_combined_into_one_event(
    node_api: kubeapi.KubeApi, api_client: client.ApiClient, namespace: str
) -> None:
    calls = [("Warning", "Unhealthy", f"Liveness probe failed: attempt {i:02d}") for i in range(12)]
    recorder = await recorded(node_api, Clock(), calls, namespace)

    events = await core_events(api_client, namespace)
    assert len(events) == 10
    combined = events[0]
    assert combined["message"] == (
        "(combined from similar events): Liveness probe failed: attempt 11"
    )
    assert combined["count"] == 3
    assert [e["message"] for e in events[1:]] == [
        f"Liveness probe failed: attempt {i:02d}" for i in range(9)
    ]
    assert recorder.metrics is not None
    assert recorder.metrics.events.labels("created")._value.get() == 10
    assert recorder.metrics.events.labels("updated")._value.get() == 2


async def test_the_spam_filter_lets_25_through_then_one_per_five_minutes(
    node_api: kubeapi.KubeApi, api_client: client.ApiClient, namespace: str
) -> None:
    clock = Clock()
    registry = CollectorRegistry()
    recorder = kubeevents.Recorder(
        node_api, event_metrics=metrics.KubeEventMetrics(registry), clock=clock
    )
    message = "Back-off restarting failed container app"
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(recorder.run())
        for _ in range(30):
            recorder.event(KUBELET, pod_ref(namespace), "Warning", "BackOff", message)
        await recorder.flush()
        clock.now += 300
        recorder.event(KUBELET, pod_ref(namespace), "Warning", "BackOff", message)
        await recorder.flush()
        task.cancel()

    (event,) = await core_events(api_client, namespace)
    assert event["count"] == 26
    assert recorder.metrics is not None
    assert recorder.metrics.events.labels("filtered")._value.get() == 5


async def test_an_event_in_a_namespace_being_deleted_is_counted_not_warned(
    node_api: kubeapi.KubeApi, api_client: client.ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The apiserver refuses every create in a namespace being deleted: such an Event is
    counted (`namespace_terminating`) and logged at debug, not one warning each."""
    admin = kubeapi.KubeApi(api_client)
    namespaces = kubeapi.Resource("", "v1", "namespaces", namespaced=False)
    configmaps = kubeapi.Resource("", "v1", "configmaps")
    ns = f"terminating-{uuid.uuid4().hex[:6]}"
    await admin.create(namespaces, None, {"metadata": {"name": ns}})
    hold = {"name": "held", "finalizers": ["kevents.dev/test-hold"]}
    await admin.create(configmaps, ns, {"metadata": hold})
    try:
        await admin.delete(namespaces, None, ns)
        # it stays Terminating while the ConfigMap's finalizer holds it
        await waiting.fetched(
            lambda: admin.get(namespaces, None, ns),
            lambda got: got.get("status", {}).get("phase") == "Terminating",
            30, f"namespace {ns} terminating",
        )  # fmt: skip
        registry = CollectorRegistry()
        recorder = kubeevents.Recorder(
            node_api, event_metrics=metrics.KubeEventMetrics(registry), clock=Clock()
        )
        with caplog.at_level(logging.DEBUG, logger="kevents.kubeevents"):
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(recorder.run())
                recorder.event(KUBELET, pod_ref(ns), "Warning", "BackOff", "Back-off restarting")
                await recorder.flush()
                task.cancel()

        def counted(outcome: str) -> float | None:
            return registry.get_sample_value(
                "kevents_kubernetes_events_total", {"outcome": outcome}
            )

        assert counted("namespace_terminating") == 1.0
        assert counted("failed") is None
        logged = [r for r in caplog.records if r.name == "kevents.kubeevents"]
        assert logged and all(r.levelno == logging.DEBUG for r in logged), logged
        assert "being terminated" in logged[-1].getMessage()
    finally:
        await admin.merge_patch(configmaps, ns, "held", {"metadata": {"finalizers": None}})
