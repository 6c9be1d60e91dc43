"""The 2019 tutorial's `v1alpha1` Broker and Trigger on the installed system (`hack/up`): the
controller pod converts them (`/convert` behind the `kevents-webhook` Service, with the CA it
publishes into the CRDs). A namespace labelled `knative-eventing-injection=enabled` gets its
`default` Broker, readable at v1alpha1; an ApiServerSource whose sink is that Broker at
`eventing.knative.dev/v1alpha1` sends ConfigMap changes; a v1alpha1 Trigger with
`filter.sourceAndType` delivers only the `add` events to event-display, and reads back as
written plus Knative's defaults (broker `default`, the subscriber ref's namespace)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests import cluster, waiting
from tests.e2e import installed, scenarios
from tests.e2e import test_broker as broker

pytestmark = pytest.mark.cluster

TRIGGERS = "triggers.v1alpha1.eventing.knative.dev"
BROKERS = "brokers.v1alpha1.eventing.knative.dev"


def scenario(ns: str) -> str:
    return (
        scenarios.display(ns, "event-display")
        + f"""
---
apiVersion: eventing.knative.dev/v1alpha1
kind: Trigger
metadata: {{name: testevents-trigger, namespace: {ns}}}
spec:
  filter:
    sourceAndType:
      type: {broker.ADD}
      source: Any
  subscriber:
    ref:
      apiVersion: v1
      kind: Service
      name: event-display
"""
        + scenarios.configmap_source(ns, "broker", "eventing.knative.dev/v1alpha1")
    )


@pytest.fixture(scope="module")
def legacy(kube: cluster.Kube, main_job: installed.MainJob) -> Iterator[str]:
    with scenarios.namespace(
        kube, "legacy-eventing-e2e", "knative-eventing-injection=enabled"
    ) as ns:
        scenarios.wait_ready(kube, ns, [f"{BROKERS}/default"])
        kube.apply(scenario(ns))
        scenarios.wait_ready(
            kube, ns, [f"{TRIGGERS}/testevents-trigger", "apiserversource/configmaps"]
        )
        kube.kubectl("-n", ns, "rollout", "status", "deployment/event-display", "--timeout=120s")
        yield ns


def test_v1alpha1_trigger_reads_back_as_written_and_is_stored_as_v1(
    kube: cluster.Kube, legacy: str
) -> None:
    old = json.loads(kube.kubectl("get", "-n", legacy, TRIGGERS, "testevents-trigger",
                                  "-o", "json").stdout)  # fmt: skip
    written = next(d for d in yaml.safe_load_all(scenario(legacy)) if d["kind"] == "Trigger")
    # As Knative's v1alpha1 TriggerSpec.SetDefaults: broker `default`, the subscriber's ref in
    # the Trigger's namespace; the filter comes back as written (the conversion keeps it).
    defaulted = {"broker": "default", **written["spec"]}
    defaulted["subscriber"]["ref"] = {**defaulted["subscriber"]["ref"], "namespace": legacy}
    assert old["spec"] == defaulted
    assert old["status"]["subscriberURI"] == (f"http://event-display.{legacy}.svc.cluster.local")
    stored = kube.get_json("-n", legacy, "trigger", "testevents-trigger")
    assert stored["apiVersion"] == "eventing.knative.dev/v1"
    assert stored["spec"]["filter"] == {"attributes": {"type": broker.ADD}}  # type: ignore[index]
    default = json.loads(kube.kubectl("get", "-n", legacy, BROKERS, "default", "-o", "json").stdout)
    assert default["status"]["address"]["hostname"] == (
        "broker-ingress.kevents-system.svc.cluster.local"
    )


def test_only_the_adds_reach_the_display(kube: cluster.Kube, legacy: str) -> None:
    name = f"cm-{uuid.uuid4().hex[:6]}"
    kube.apply(broker.configmap(legacy, name))
    kube.kubectl(
        "-n", legacy, "patch", "configmap", name, "--type=merge", "-p", '{"data":{"k":"v2"}}'
    )
    sentinel = f"{name}-sentinel"
    kube.apply(broker.configmap(legacy, sentinel))  # created after the update: its add is last

    def about(cm: str) -> list[dict[str, Any]]:
        events = scenarios.received(kube, legacy, "app=event-display")
        return scenarios.about(events, f"/configmaps/{cm}")

    waiting.eventually(lambda: about(sentinel), 90, "the sentinel's add at event-display", 1.0)
    assert [e["attributes"]["type"] for e in about(name)] == [broker.ADD]
