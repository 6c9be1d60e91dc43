"""The broker end to end on the installed system (`hack/up`: controller and dispatcher pods).

A namespace labelled for injection gets its `default` Broker; an ApiServerSource sends
ConfigMap changes to the Broker; Triggers deliver to event-display pods (events read back
with GET /events on their pod IPs): one Trigger takes only `add` events, one takes all of
them. A trace of the broker's path arrives in Zipkin.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests import cluster, waiting
from tests.e2e import installed, scenarios

pytestmark = pytest.mark.cluster

ADD = "dev.knative.apiserver.resource.add"
UPDATE = "dev.knative.apiserver.resource.update"
TRACING = (
    '{"backend":"zipkin","zipkin-endpoint":'
    '"http://zipkin.kevents-system.svc.cluster.local:9411/api/v2/spans","sample-rate":"1.0"}'
)
"""The event-display pods' spans go to the local Zipkin, as in examples/."""


def scenario(ns: str) -> str:
    displays = "".join(
        scenarios.display(ns, name, {"K_TRACING_CONFIG": TRACING}, scenarios.TRACED_DISPLAY_IMAGE)
        for name in ("display-adds", "display-all", "display-dls")
    )
    return (
        displays
        + f"""
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: adds-only, namespace: {ns}}}
spec:
  broker: default
  filter:
    attributes:
      type: {ADD}
  subscriber:
    ref: {{apiVersion: v1, kind: Service, name: display-adds}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: everything, namespace: {ns}}}
spec:
  broker: default
  subscriber:
    ref: {{apiVersion: v1, kind: Service, name: display-all}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: broken, namespace: {ns}}}
spec:
  broker: default
  filter:
    attributes:
      type: {UPDATE}
  subscriber:
    ref: {{apiVersion: v1, kind: Service, name: display-all}}
    uri: /nope
  delivery:
    retry: 2
    backoffPolicy: linear
    backoffDelay: PT0.2S
    deadLetterSink:
      ref: {{apiVersion: v1, kind: Service, name: display-dls}}
"""
        + scenarios.configmap_source(ns, "broker")
    )


def configmap(ns: str, name: str) -> str:
    return scenarios.configmap(ns, name, "broker")


def sentinel_event(ns: str, name: str, pod: str) -> str:
    return f"""
apiVersion: v1
kind: Event
metadata: {{name: {name}, namespace: {ns}}}
involvedObject: {{kind: Pod, name: {pod}, namespace: {ns}, apiVersion: v1}}
reason: Sentinel
message: the last event of this test
type: Normal
"""


@pytest.fixture(scope="module")
def brokered(kube: cluster.Kube, main_job: installed.MainJob) -> Iterator[str]:
    """A namespace labelled for injection, with the scenario applied and Ready."""
    with scenarios.namespace(kube, "broker-e2e", "eventing.knative.dev/injection=enabled") as ns:
        scenarios.wait_ready(kube, ns, ["broker/default"], 90)
        kube.apply(scenario(ns))
        chain = ["trigger/adds-only", "trigger/everything", "trigger/broken"]
        scenarios.wait_ready(kube, ns, [*chain, "apiserversource/configmaps"])
        for app in ("display-adds", "display-all", "display-dls"):
            kube.kubectl("-n", ns, "rollout", "status", f"deployment/{app}", "--timeout=120s")
        yield ns


def test_the_injected_default_broker_is_ready_at_the_ingress_address(
    kube: cluster.Kube, brokered: str
) -> None:
    broker = kube.get_json("-n", brokered, "broker", "default")
    status = broker["status"]
    assert isinstance(status, dict)
    assert status["address"]["url"] == (
        f"http://broker-ingress.kevents-system.svc.cluster.local/{brokered}/default"
    )
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == (  # type: ignore[index]
        "MTChannelBasedBroker"
    )


def test_triggers_deliver_only_the_events_their_filters_match(
    kube: cluster.Kube, brokered: str
) -> None:
    name = f"cm-{uuid.uuid4().hex[:6]}"
    kube.apply(configmap(brokered, name))
    kube.kubectl(
        "-n", brokered, "patch", "configmap", name, "--type=merge", "-p", '{"data":{"k":"v2"}}'
    )
    kube.kubectl("-n", brokered, "delete", "configmap", name)

    def about_it(app: str) -> list[str]:
        events = scenarios.received(kube, brokered, f"app={app}")
        return [e["attributes"]["type"] for e in scenarios.about(events, f"/configmaps/{name}")]

    everything = waiting.eventually(
        lambda: (t := about_it("display-all")) and t[-1].endswith(".delete") and t,
        90, "the delete at the catch-all Trigger's display", 1.0,
    )  # fmt: skip
    assert everything[0] == ADD
    assert {UPDATE} <= set(everything)
    # A sentinel ConfigMap created now is admitted by the broker after every event about
    # `name` was filtered: once its add is at the filtered display, nothing more about `name`
    # can follow, and the filtered display has exactly the add.
    sentinel = f"{name}-sentinel"
    kube.apply(configmap(brokered, sentinel))
    waiting.eventually(
        lambda: scenarios.about(
            scenarios.received(kube, brokered, "app=display-adds"), f"/configmaps/{sentinel}"
        ),
        90, "the sentinel's add at the filtered display", 1.0,
    )  # fmt: skip
    assert about_it("display-adds") == [ADD]


def test_a_failing_trigger_subscriber_is_retried_then_dead_lettered(
    kube: cluster.Kube, brokered: str
) -> None:
    name = f"cm-{uuid.uuid4().hex[:6]}"
    kube.apply(configmap(brokered, name))
    kube.kubectl(
        "-n", brokered, "patch", "configmap", name, "--type=merge", "-p", '{"data":{"k":"v2"}}'
    )

    def dead_letters() -> list[dict[str, Any]]:
        events = scenarios.received(kube, brokered, "app=display-dls")
        return scenarios.about(events, f"/configmaps/{name}")

    found = waiting.eventually(dead_letters, 90, "the update at the dead letter sink", 1.0)
    assert [e["attributes"]["type"] for e in found] == [UPDATE]
    extensions = found[0]["extensions"]
    assert extensions["knativeerrordest"] == (
        f"http://display-all.{brokered}.svc.cluster.local/nope"
    )
    assert extensions["knativeerrorcode"] == "404"


def test_zipkin_has_a_trace_through_source_broker_ingress_filter_and_subscriber(
    kube: cluster.Kube, brokered: str
) -> None:
    kube.apply(configmap(brokered, "traced"))
    wanted = {"apiserver-source", "broker-ingress", "broker-filter", "event-display"}

    def complete_trace() -> list[dict[str, Any]] | None:
        url = "http://127.0.0.1:9411/api/v2/traces?limit=300&lookback=3600000"
        for trace in installed.get_json(url):
            services = {s.get("localEndpoint", {}).get("serviceName") for s in trace}
            ours = any(brokered in json.dumps(s.get("tags", {})) for s in trace)
            # Each hop exports its spans in its own batches: the filter's client span ends
            # after the display answered, so it may reach Zipkin after the display's span.
            # A trace counts once every span's parent has arrived too.
            ids = {s["id"] for s in trace}
            linked = all(s.get("parentId") in ids for s in trace if "parentId" in s)
            if wanted <= services and ours and linked:
                return list(trace)
        return None

    trace = waiting.eventually(complete_trace, 90, "a whole trace through the broker", 2.0)
    assert len({span["traceId"] for span in trace}) == 1
    by_id = {s["id"]: s for s in trace}
    displays = [s for s in trace if s["localEndpoint"]["serviceName"] == "event-display"]
    for display in displays:  # one per Trigger whose filter matches
        path = [display]
        while "parentId" in path[-1]:
            path.append(by_id[path[-1]["parentId"]])
        hops = [s["localEndpoint"]["serviceName"] for s in reversed(path)]
        # from the source to the subscriber, each hop named once, in delivery order
        assert list(dict.fromkeys(hops)) == [
            "apiserver-source", "broker-ingress", "broker-filter", "event-display"
        ]  # fmt: skip


def test_prometheus_scrapes_the_broker_ingress_and_filter(
    main_job: installed.MainJob, brokered: str
) -> None:
    def total(expr: str) -> float:
        url = f"{main_job.prometheus.rstrip('/')}/api/v1/query?query={urllib.parse.quote(expr)}"
        return sum(float(r["value"][1]) for r in installed.get_json(url)["data"]["result"])

    accepted = 'sum(kevents_broker_events_received_total{result="accepted"})'
    waiting.eventually(lambda: total(accepted) > 0, 90, "broker ingress counts", 2.0)
    matched = 'sum(kevents_broker_filter_events_total{result="matched"})'
    waiting.eventually(lambda: total(matched) > 0, 90, "broker filter counts", 2.0)


def test_the_broker_example_delivers_new_kubernetes_events_only(
    kube: cluster.Kube, main_job: installed.MainJob
) -> None:
    ns = "kevents-broker-demo"
    example = cluster.REPO / "examples" / "broker"
    kube.kubectl("apply", "-f", str(example / "100-namespace.yaml"))
    kube.kubectl("apply", "-f", str(example))
    try:
        scenarios.wait_ready(
            kube, ns, ["broker/default", "trigger/new-events", "apiserversource/k8s-events"]
        )
        kube.kubectl("-n", ns, "rollout", "status", "deployment/event-display", "--timeout=120s")
        name = f"probe-{uuid.uuid4().hex[:6]}"
        kube.kubectl("-n", ns, "run", name, "--image=busybox", "--restart=Never", "--", "true")

        def about_it() -> list[dict[str, Any]]:
            return [
                e
                for e in scenarios.received(kube, ns, "app=event-display")
                if f"/events/{name}." in e["attributes"].get("subject", "")
            ]

        waiting.eventually(about_it, 90, f"an add event about pod {name}", 1.0)
        # The pod's events are updated as it runs; only their adds pass the Trigger. A sentinel
        # Event created now reaches the display after whatever the broker admitted before it.
        sentinel = f"{name}-sentinel"
        kube.apply(sentinel_event(ns, sentinel, name))
        waiting.eventually(
            lambda: scenarios.about(
                scenarios.received(kube, ns, "app=event-display"), f"/events/{sentinel}"
            ),
            90, "the sentinel Event's add at event-display", 1.0,
        )  # fmt: skip
        got = scenarios.received(kube, ns, "app=event-display")
        assert {e["attributes"]["type"] for e in got} == {ADD}
    finally:
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)
