"""Sequence and Parallel end to end on the installed system (`hack/up`).

The workflow tutorial: events posted to `broker-1`; a Trigger sends `buildstatus: pass`
events to the Sequence `build` (three `kevents/step` services: create the test bed, run the
tests, clean the test bed; each appends its text and sets an extension), whose reply goes to
`broker-2`, where `teststatus: pass` events go to the `final` display; `buildstatus: fail`
events go to the `alert` display. The middle step fails events carrying `crash: yes`: they
are retried per the step's delivery, then dead-lettered. A Parallel `router` with two
filtered branches and one unfiltered one replies into a display per branch.

Events are posted from the host to the dispatcher pod (its broker port for `broker-1`, its
channel port for the Parallel's ingress channel) and read back with GET /events on the
displays' and steps' pod IPs.
"""

from __future__ import annotations

import secrets
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests import cluster, waiting
from tests.e2e import installed, scenarios

pytestmark = pytest.mark.cluster

TRACING = (
    '{"backend":"zipkin","zipkin-endpoint":'
    '"http://zipkin.kevents-system.svc.cluster.local:9411/api/v2/spans","sample-rate":"1.0"}'
)
DISPLAYS = ("final", "alert", "dls", "replies-red", "replies-big", "replies-all")
STEPS: dict[str, dict[str, str]] = {
    "step-1": {"STEP_APPEND": " | testbed created", "STEP_EXTENSIONS": "testbed=created"},
    "step-2": {"STEP_APPEND": " | tests run", "STEP_EXTENSIONS": "teststatus=pass",
               "STEP_FAIL_WHEN": "crash=yes"},
    "step-3": {"STEP_APPEND": " | testbed cleaned", "STEP_EXTENSIONS": "testbed=cleaned"},
    "filter-red": {"STEP_FILTER": "color=red"},
    "filter-big": {"STEP_FILTER": "size=big"},
    "mark": {"STEP_APPEND": " | marked", "STEP_EXTENSIONS": "marked=yes"},
}  # fmt: skip


def workload(ns: str, name: str, image: str, env: dict[str, str]) -> str:
    return scenarios.workload(ns, name, image, {"K_TRACING_CONFIG": TRACING, **env})


def service(name: str) -> str:
    return f"{{ref: {{apiVersion: v1, kind: Service, name: {name}}}}}"


def broker(name: str) -> str:
    return f"{{ref: {{apiVersion: eventing.knative.dev/v1, kind: Broker, name: {name}}}}}"


def trigger(name: str, on: str, attribute: str, value: str, subscriber: str) -> str:
    return f"""
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: {name}}}
spec:
  broker: {on}
  filter: {{attributes: {{{attribute}: {value}}}}}
  subscriber: {subscriber}
---
"""


def scenario(ns: str) -> str:
    image = "gcr.io/knative-releases/knative.dev/eventing/cmd/event_display"
    pods = "".join(workload(ns, name, image, {}) for name in DISPLAYS)
    pods += "".join(workload(ns, name, "kevents/step", env) for name, env in STEPS.items())
    sequence = "{apiVersion: flows.knative.dev/v1, kind: Sequence, name: build}"
    return f"""{pods}
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {{name: broker-1}}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {{name: broker-2}}
---
apiVersion: flows.knative.dev/v1
kind: Sequence
metadata: {{name: build}}
spec:
  steps:
  - {service("step-1")[1:-1]}
  - ref: {{apiVersion: v1, kind: Service, name: step-2}}
    delivery:
      retry: 2
      backoffPolicy: linear
      backoffDelay: PT0.2S
      deadLetterSink: {service("dls")}
  - {service("step-3")[1:-1]}
  reply: {broker("broker-2")}
---
{trigger("build-pass", "broker-1", "buildstatus", "pass", "{ref: " + sequence + "}")}
{trigger("build-fail", "broker-1", "buildstatus", "fail", service("alert"))}
{trigger("tests-pass", "broker-2", "teststatus", "pass", service("final"))}
{trigger("tests-fail", "broker-2", "teststatus", "fail", service("alert"))}
apiVersion: flows.knative.dev/v1
kind: Parallel
metadata: {{name: router}}
spec:
  branches:
  - filter: {service("filter-red")}
    subscriber: {service("mark")}
    reply: {service("replies-red")}
  - filter: {service("filter-big")}
    subscriber: {service("mark")}
    reply: {service("replies-big")}
  - subscriber: {service("mark")}
  reply: {service("replies-all")}
"""


def received(kube: cluster.Kube, ns: str, app: str) -> list[dict[str, Any]]:
    """What the pods of `app` (a display or a step) kept."""
    return scenarios.received(kube, ns, f"app={app}")


def ids_at(kube: cluster.Kube, ns: str, app: str) -> list[str]:
    return [e["attributes"]["id"] for e in received(kube, ns, app)]


def dispatcher_ip(kube: cluster.Kube) -> str:
    """The IP of a ready dispatcher pod (waiting for one while it restarts)."""
    selector = "app.kubernetes.io/name=kevents-dispatcher"

    def ready_ip() -> str | None:
        found = kube.get_json("pods", "-n", "kevents-system", "-l", selector)
        pods: list[dict[str, Any]] = found["items"]  # type: ignore[assignment]
        for pod in pods:
            status = pod.get("status") or {}
            conditions = status.get("conditions") or []
            if status.get("podIP") and any(
                c["type"] == "Ready" and c["status"] == "True" for c in conditions
            ):
                return str(status["podIP"])
        return None

    return str(waiting.eventually(ready_ip, 120, "a ready dispatcher pod", 1.0))


def post(url: str, event_id: str, extensions: dict[str, str], traceparent: str = "") -> int:
    headers = {
        "ce-specversion": "1.0", "ce-id": event_id, "ce-type": "dev.example.build",
        "ce-source": "/e2e/flows", "content-type": "text/plain",
        **{f"ce-{k}": v for k, v in extensions.items()},
    }  # fmt: skip
    if traceparent:
        headers["traceparent"] = traceparent
    request = urllib.request.Request(url, data=b"build 42", headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


@pytest.fixture(scope="module")
def flows(kube: cluster.Kube, main_job: installed.MainJob) -> Iterator[str]:
    with scenarios.namespace(kube, "flows-e2e") as ns:
        kube.apply(scenario(ns), ns)
        for app in (*DISPLAYS, *STEPS):
            kube.kubectl("-n", ns, "rollout", "status", f"deployment/{app}", "--timeout=180s")
        scenarios.wait_ready(kube, ns, [
            "broker/broker-1", "broker/broker-2", "sequence/build", "parallel/router",
            "trigger/build-pass", "trigger/build-fail", "trigger/tests-pass",
        ])  # fmt: skip
        yield ns


def broker_1(kube: cluster.Kube, ns: str) -> str:
    return f"http://{dispatcher_ip(kube)}:8001/{ns}/broker-1"


def test_kubectl_lists_sequences_and_parallels_as_flows(kube: cluster.Kube, flows: str) -> None:
    printed = kube.kubectl("-n", flows, "get", "sequences,parallels").stdout
    assert f"http://build-kn-sequence-0-kn-channel.{flows}.svc.cluster.local" in printed
    assert f"http://router-kn-parallel-kn-channel.{flows}.svc.cluster.local" in printed
    listed = kube.kubectl("-n", flows, "get", "flows", "-o", "name").stdout.split()
    assert sorted(listed) == [
        "parallel.flows.knative.dev/router", "sequence.flows.knative.dev/build",
    ]  # fmt: skip


def test_a_passing_build_runs_the_three_steps_in_order_and_reaches_the_final_sink_in_one_trace(
    kube: cluster.Kube, flows: str
) -> None:
    failing, passing = f"fail-{uuid.uuid4().hex[:6]}", f"pass-{uuid.uuid4().hex[:6]}"
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    assert post(broker_1(kube, flows), failing, {"buildstatus": "fail"}) == 202
    assert post(broker_1(kube, flows), passing, {"buildstatus": "pass"}, traceparent) == 202

    def at_final() -> list[dict[str, Any]]:
        return [e for e in received(kube, flows, "final") if e["attributes"]["id"] == passing]

    found = waiting.eventually(at_final, 90, "the passing build at the final sink", 1.0)
    assert found[0]["data"] == ("build 42 | testbed created | tests run | testbed cleaned")
    extensions = found[0]["extensions"]
    assert extensions["teststatus"] == "pass"
    assert extensions["testbed"] == "cleaned"
    assert extensions["buildstatus"] == "pass"
    # The failing build went to the alert sink (posted first: it is there by now), never
    # through the steps.
    waiting.eventually(lambda: failing in ids_at(kube, flows, "alert"), 30, "the alert", 1.0)
    assert passing not in ids_at(kube, flows, "alert")
    assert failing not in ids_at(kube, flows, "step-1")
    assert failing not in ids_at(kube, flows, "final")

    # The last hop is broker-2's delivery to the final display, answered 2xx: Knative's
    # event_display exports its own spans over OTLP, which Zipkin does not take.
    wanted = {"broker-ingress", "broker-filter", "step-1", "step-2", "step-3"}
    final_url = f"http://final.{flows}.svc.cluster.local"

    seen = ["no answer from Zipkin yet"]  # what the last poll found, for the failure message

    def whole_trace() -> list[dict[str, Any]] | None:
        try:
            spans = installed.get_json(f"http://127.0.0.1:9411/api/v2/trace/{trace_id}")
        except OSError as exc:
            seen[0] = f"Zipkin: {exc}"
            return None
        services = {s.get("localEndpoint", {}).get("serviceName") for s in spans}
        calls = sorted(
            f"{s['tags']['url.full']} {s['tags'].get('http.response.status_code', '-')}"
            for s in spans if "url.full" in s.get("tags", {})
        )  # fmt: skip
        seen[0] = f"{len(spans)} spans, services {sorted(map(str, services))}, calls {calls}"
        to_final = [
            s for s in spans
            if s.get("tags", {}).get("url.full", "").startswith(final_url)
            and s["tags"].get("http.response.status_code", "").startswith("2")
        ]  # fmt: skip
        return list(spans) if wanted <= services and to_final else None

    try:
        spans = waiting.eventually(whole_trace, 90, "one trace from broker-1 to the sink", 2.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the last poll found {seen[0]}") from None
    brokers = {s.get("tags", {}).get("kn.broker.name") for s in spans}
    assert {"broker-1", "broker-2"} <= brokers
    ids = {s["id"] for s in spans}
    steps = [s for s in spans if s["localEndpoint"]["serviceName"].startswith("step-")]
    assert all(s.get("parentId") in ids for s in steps)


def test_a_failing_middle_step_is_retried_then_dead_lettered_and_later_events_still_flow(
    kube: cluster.Kube, flows: str
) -> None:
    crash, later = f"crash-{uuid.uuid4().hex[:6]}", f"later-{uuid.uuid4().hex[:6]}"
    post(broker_1(kube, flows), crash, {"buildstatus": "pass", "crash": "yes"})

    def dead_letters() -> list[dict[str, Any]]:
        return [e for e in received(kube, flows, "dls") if e["attributes"]["id"] == crash]

    found = waiting.eventually(dead_letters, 90, "the crashing build at the DLS", 1.0)
    extensions = found[0]["extensions"]
    assert extensions["knativeerrorcode"] == "500"
    assert extensions["knativeerrordest"] == f"http://step-2.{flows}.svc.cluster.local"
    # What step 2 was given: step 1's work done, 1 attempt + 2 retries, all answered 500.
    assert found[0]["data"] == "build 42 | testbed created"
    attempts = [e["status"] for e in received(kube, flows, "step-2")
                if e["attributes"]["id"] == crash]  # fmt: skip
    assert attempts == [500, 500, 500]
    assert crash not in ids_at(kube, flows, "step-3")

    post(broker_1(kube, flows), later, {"buildstatus": "pass"})
    waiting.eventually(
        lambda: later in ids_at(kube, flows, "final"), 90, "a later build at the final sink", 1.0
    )
    assert crash not in ids_at(kube, flows, "final")


def test_a_parallel_sends_each_event_to_exactly_the_matching_branches(
    kube: cluster.Kube, flows: str
) -> None:
    ingress = f"http://{dispatcher_ip(kube)}:8000/{flows}/router-kn-parallel"
    tag = uuid.uuid4().hex[:6]
    sent = {
        f"red-big-{tag}": {"color": "red", "size": "big"},
        f"red-{tag}": {"color": "red"},
        f"small-{tag}": {"size": "small"},
        f"plain-{tag}": {},
    }
    for event_id, extensions in sent.items():
        assert post(ingress, event_id, extensions) == 202
    sentinel = f"sentinel-{tag}"  # matches every branch; sent last, awaited everywhere
    assert post(ingress, sentinel, {"color": "red", "size": "big"}) == 202
    sinks = ("replies-red", "replies-big", "replies-all")
    for sink in sinks:

        def arrived(at: str = sink) -> bool:
            return sentinel in ids_at(kube, flows, at)

        waiting.eventually(arrived, 90, f"the sentinel at {sink}", 1.0)

    def mine(sink: str) -> list[str]:
        return sorted(i for i in ids_at(kube, flows, sink) if i.endswith(tag) and i != sentinel)

    assert mine("replies-red") == sorted([f"red-big-{tag}", f"red-{tag}"])
    assert mine("replies-big") == [f"red-big-{tag}"]
    assert mine("replies-all") == sorted(sent)
    replies = [e for e in received(kube, flows, "replies-red") if e["attributes"]["id"] == sentinel]
    assert replies[0]["data"] == "build 42 | marked"
    assert replies[0]["extensions"]["marked"] == "yes"
    # The filters answered without an event for what they kept out: nothing failed.
    statuses = {e["status"] for e in received(kube, flows, "filter-big")}
    assert statuses == {200, 202}
