"""A Knative Service (`serving.knative.dev/v1`, kevents' minimal one from manifests/serving/)
as a sink on the installed system: a PingSource with a time zone and a Trigger deliver to
it; changing its image makes revision `-00002`, which takes over while events keep flowing,
none lost; `kubectl get ksvc` and `kubectl logs -l serving.knative.dev/service=NAME -c
user-container` show what the tutorials say.

Loss is judged by content, not timing: ConfigMaps created one after another (through an
ApiServerSource, the Broker and the Trigger) must all arrive, across both revisions' pods,
before a sentinel ConfigMap created last; the PingSource's ticks (every 10 s) must be
consecutive from the first seen to the last. The pods' received events are read with
GET /events while they run (the old revision's pod stops RESERVE_GRACE after the switch).
"""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from controller.serving import resources
from tests import cluster, waiting
from tests.e2e import installed, scenarios

pytestmark = pytest.mark.cluster

ADD = "dev.knative.apiserver.resource.add"
PING = "dev.knative.sources.ping"
FIRST_IMAGE = "gcr.io/knative-releases/knative.dev/eventing/cmd/event_display"
SECOND_IMAGE = "docker.io/kevents/event-display:latest"
"""Another image (kevents' display: the same log), one hack/build-images builds."""


def scenario(ns: str, image: str) -> str:
    return f"""
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {{name: display, namespace: {ns}}}
spec:
  template:
    spec:
      containers:
      - image: {image}
        env: [{{name: DISPLAY_HISTORY, value: "5000"}}]
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {{name: ticks, namespace: {ns}}}
spec:
  schedule: "*/10 * * * * *"
  timezone: Europe/Madrid
  contentType: application/json
  data: '{{"message": "Hello from Madrid"}}'
  sink:
    ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: display}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: to-display, namespace: {ns}}}
spec:
  broker: default
  filter:
    attributes:
      type: {ADD}
  subscriber:
    ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: display}}
""" + scenarios.configmap_source(ns, "serving")


def configmap(ns: str, name: str) -> str:
    return scenarios.configmap(ns, name, "serving")


class Received:
    """What each pod of the Knative Service has received, read while the pods run."""

    def __init__(self, kube: cluster.Kube, ns: str) -> None:
        self.kube, self.ns = kube, ns
        self.by_pod: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self.lock = threading.Lock()

    def poll(self) -> None:
        pods = self.kube.get_json(
            "pods", "-n", self.ns, "-l", f"{resources.SERVICE_LABEL}=display"
        )["items"]
        assert isinstance(pods, list)
        for pod in pods:
            events = installed.pod_events(self.kube, pod)
            if not events:
                continue  # not listening yet, or stopping: what it had is kept, polled again
            revision = pod["metadata"]["labels"][resources.REVISION_LABEL]
            with self.lock:
                self.by_pod[pod["metadata"]["name"]] = (revision, events)

    def events(self, revision: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                e for rev, events in self.by_pod.values() for e in events
                if revision is None or rev == revision
            ]  # fmt: skip

    def configmaps(self, revision: str | None = None) -> set[str]:
        return {
            e["attributes"]["subject"].rsplit("/", 1)[-1]
            for e in self.events(revision)
            if e["attributes"]["type"] == ADD
        }

    def pings(self, revision: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events(revision) if e["attributes"]["type"] == PING]


def background(
    stop: threading.Event, step: float, work: Any, errors: list[BaseException]
) -> threading.Thread:
    """`work()` every `step` seconds until `stop`; an exception ends it and is kept."""

    def loop() -> None:
        while not stop.is_set():
            try:
                work()
            except Exception as exc:  # reported by the test after join
                errors.append(exc)
                return
            stop.wait(step)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def served(kube: cluster.Kube, main_job: installed.MainJob) -> Iterator[str]:
    with scenarios.namespace(kube, "serving-e2e", "eventing.knative.dev/injection=enabled") as ns:
        scenarios.wait_ready(kube, ns, ["broker/default"], 90)
        kube.apply(scenario(ns, FIRST_IMAGE))
        scenarios.wait_ready(kube, ns, ["ksvc/display", "trigger/to-display", "pingsource/ticks",
                                        "apiserversource/configmaps"])  # fmt: skip
        yield ns


def test_ksvc_is_the_sink_of_a_pingsource_and_a_trigger(kube: cluster.Kube, served: str) -> None:
    url = f"http://display.{served}.svc.cluster.local"
    ksvc = scenarios.get(kube, served, "ksvc/display")
    assert ksvc["status"]["url"] == url and ksvc["status"]["address"]["url"] == url
    assert ksvc["status"]["latestReadyRevisionName"] == "display-00001"
    assert scenarios.get(kube, served, "pingsource/ticks")["status"]["sinkUri"] == url
    assert scenarios.get(kube, served, "trigger/to-display")["status"]["subscriberUri"] == url
    listing = kube.kubectl("-n", served, "get", "ksvc").stdout.splitlines()
    assert listing[0].split() == ["NAME", "URL", "LATESTCREATED", "LATESTREADY", "READY", "REASON"]
    assert listing[1].split() == ["display", url, "display-00001", "display-00001", "True"]


def test_a_new_image_makes_revision_2_and_no_event_is_lost(kube: cluster.Kube, served: str) -> None:
    ns = served
    received = Received(kube, ns)
    stop = threading.Event()
    created: list[str] = []

    def produce() -> None:
        name = f"cm-{len(created):04d}"
        kube.apply(configmap(ns, name))
        created.append(name)

    errors: list[BaseException] = []
    collector = background(stop, 0.3, received.poll, errors)
    producer = background(stop, 0.0, produce, errors)
    try:
        waiting.eventually(
            lambda: received.pings("display-00001") and received.configmaps("display-00001"),
            60, "a tick and a ConfigMap at revision 00001", 1.0,
        )  # fmt: skip
        kube.kubectl(
            "-n", ns, "patch", "ksvc", "display", "--type=json", "-p",
            json.dumps([{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                         "value": SECOND_IMAGE}]),
        )  # fmt: skip
        ksvc = waiting.eventually(
            lambda: (k := scenarios.get(kube, ns, "ksvc/display"))
            and k["status"].get("latestReadyRevisionName") == "display-00002"
            and scenarios.is_ready(k) and k,
            120, "revision display-00002 ready", 1.0,
        )  # fmt: skip
        assert ksvc["status"]["latestCreatedRevisionName"] == "display-00002"
        # The old revision's pod stops RESERVE_GRACE after the switch; until it is gone
        # both are polled, and events keep coming (ticks and ConfigMaps at 00002).
        waiting.eventually(
            lambda: not kube.get_json(
                "pods", "-n", ns, "-l", f"{resources.REVISION_LABEL}=display-00001"
            )["items"],
            120, "revision 00001's pod gone", 1.0,
        )  # fmt: skip
        waiting.eventually(
            lambda: received.pings("display-00002") and received.configmaps("display-00002"),
            60, "a tick and a ConfigMap at revision 00002", 1.0,
        )  # fmt: skip
    finally:
        stop.set()
        producer.join(60)
        collector.join(60)
    assert not errors, f"the producer or the collector failed: {errors!r}"

    # A sentinel created after every other ConfigMap: once it is at the new revision, every
    # earlier add has been delivered (one ApiServerSource, in order, one Trigger).
    kube.apply(configmap(ns, "sentinel"))

    def sentinel_arrived() -> bool:
        received.poll()
        return "sentinel" in received.configmaps("display-00002")

    waiting.eventually(sentinel_arrived, 90, "the sentinel at revision 00002", 1.0)
    received.poll()  # once more: anything delivered alongside the sentinel
    got = received.configmaps()
    missing = [name for name in created if name not in got]
    assert not missing, f"{len(missing)} of {len(created)} ConfigMap adds lost: {missing[:10]}"
    assert received.configmaps("display-00001") and received.configmaps("display-00002")

    ticks = sorted(
        {datetime.datetime.fromisoformat(e["attributes"]["time"]) for e in received.pings()}
    )
    gaps = [(b - a).total_seconds() for a, b in zip(ticks, ticks[1:], strict=False)]
    assert ticks and all(gap == 10 for gap in gaps), f"ticks not consecutive: {ticks}"

    logs = kube.kubectl(
        "-n", ns, "logs", "-l", f"{resources.SERVICE_LABEL}=display", "-c", "user-container",
        "--tail=-1",
    ).stdout  # fmt: skip
    assert f"type: {PING}" in logs and f"type: {ADD}" in logs
    assert "Hello from Madrid" in logs
    revisions = kube.kubectl("-n", ns, "get", "revisions").stdout
    assert "display-00001" in revisions and "display-00002" in revisions
