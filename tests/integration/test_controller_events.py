"""Events the controller records on its objects (`lifecycle` + `kevents.kubeevents`), against
the real apiserver: a PingSource whose sink does not exist shows Knative's `SinkNotFound`
Warning in `kubectl describe`, its retries counted on one Event, then `Ready` once it does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from kevents import kubeapi, kubeevents, metrics
from tests.cluster import Kube
from tests.integration import controllers as c

pytestmark = pytest.mark.cluster

ADAPTER = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: pingsource-mt-adapter}
spec:
  replicas: 0
  selector: {matchLabels: {app: fake-ping-adapter}}
  template:
    metadata: {labels: {app: fake-ping-adapter}}
    spec:
      containers: [{name: dispatcher, image: kevents/ping-source:installed}]
"""

PING = yaml.safe_dump({
    "apiVersion": "sources.knative.dev/v1",
    "kind": "PingSource",
    "metadata": {"name": "every-minute"},
    "spec": {"schedule": "*/1 * * * *",
             "sink": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "event-display"}}},
})  # fmt: skip


@pytest.fixture(scope="module")
def crds(kube: Kube) -> None:
    kube.install_crds("pingsources.sources.knative.dev")


async def events_of(api: kubeapi.KubeApi, namespace: str, name: str) -> list[dict[str, Any]]:
    listed = await api.request(
        "GET", kubeevents.EVENTS.path(namespace),
        query=[("fieldSelector", f"involvedObject.name={name}")],
    )  # fmt: skip
    items: list[dict[str, Any]] = listed["items"]
    return items


def with_reason(reason: str, at_least: int = 1) -> Any:
    return lambda found: any(e["reason"] == reason and e["count"] >= at_least for e in found)


async def test_a_missing_sink_is_a_sink_not_found_warning_then_ready_once_it_exists(
    kube: Kube, api_client: client.ApiClient, crds: None, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply(ADAPTER, namespace)
    kube.apply(PING, namespace)
    recorder = kubeevents.Recorder(api, event_metrics=metrics.KubeEventMetrics(CollectorRegistry()))
    async with asyncio.TaskGroup() as tg:
        writing = tg.create_task(recorder.run())
        async with c.running(api_client, namespace, ["PingSource"], recorder=recorder):
            found = await c.eventually(
                lambda: events_of(api, namespace, "every-minute"), with_reason("SinkNotFound", 2)
            )
            described = kube.kubectl("describe", "pingsource", "every-minute", "-n", namespace)
            kube.apply(c.SINK_SERVICE, namespace)
            after = await c.eventually(
                lambda: events_of(api, namespace, "every-minute"), with_reason("Ready")
            )
        writing.cancel()

    (missing,) = [e for e in found if e["reason"] == "SinkNotFound"]  # one Event, counted
    source = await api.get(kubeapi.Resource("sources.knative.dev", "v1", "pingsources"),
                           namespace, "every-minute")  # fmt: skip
    assert missing["involvedObject"]["kind"] == "PingSource"
    assert missing["involvedObject"]["apiVersion"] == "sources.knative.dev/v1"
    assert missing["involvedObject"]["uid"] == source["metadata"]["uid"]
    assert missing["type"] == "Warning"
    assert missing["source"] == {"component": "pingsource-controller"}
    # The stored destination, in Knative's field order (no webhook here defaulted its namespace).
    assert missing["message"] == (
        'Sink not found: {"ref":{"kind":"Service","name":"event-display","apiVersion":"v1"}}'
    )
    assert "Warning  SinkNotFound" in described.stdout
    ready = next(e for e in after if e["reason"] == "Ready")
    assert (ready["type"], ready["message"]) == ("Normal", "PingSource is Ready")
    # The failure told why it was not Ready: no second Warning for the same transition.
    assert {e["reason"] for e in after} == {"SinkNotFound", "Ready"}
