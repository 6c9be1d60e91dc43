"""The kubelet's Events from the node agent, on the real local cluster: what `kubectl describe
pod` and an ApiServerSource watching `v1/Event` see for the tutorials' busybox pod, a crash
loop, a failing liveness probe and a deleted pod (issue 19)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hack.localcluster import node as localnode
from tests import waiting
from tests.cluster import Kube
from tests.e2e import scenarios

pytestmark = pytest.mark.cluster


@pytest.fixture
def ns(kube: Kube) -> Iterator[str]:
    with scenarios.namespace(kube, "kevts") as name:
        yield name


def events(kube: Kube, ns: str, pod: str) -> list[dict[str, Any]]:
    out = kube.kubectl(
        "get", "events", "-n", ns, f"--field-selector=involvedObject.name={pod}", "-o", "json"
    ).stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def having(kube: Kube, ns: str, pod: str, *reasons: str) -> Callable[[], list[dict[str, Any]]]:
    def check() -> list[dict[str, Any]]:
        found = events(kube, ns, pod)
        return found if set(reasons) <= {e["reason"] for e in found} else []

    return check


def test_kubectl_run_busybox_yields_scheduled_pulled_created_started(kube: Kube, ns: str) -> None:
    kube.kubectl(
        "run", "busybox", "--image=busybox", "--restart=Never", "-n", ns, "--", "ls"
    )  # the tutorial's command, as written
    found = waiting.eventually(
        having(kube, ns, "busybox", "Scheduled", "Pulled", "Created", "Started"),
        60,
        "the busybox pod's events",
        0.5,
    )
    uid = json.loads(kube.kubectl("get", "pod", "busybox", "-n", ns, "-o", "json").stdout)[
        "metadata"
    ]["uid"]
    by_reason = {e["reason"]: e for e in found}
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        involved = by_reason[reason]["involvedObject"]
        assert (involved["kind"], involved["name"], involved["uid"]) == ("Pod", "busybox", uid)
    for reason, message in (
        ("Pulled", 'Container image "busybox" already present on machine and can be accessed '
                   "by the pod"),
        ("Created", "Container created"),
        ("Started", "Container started"),
    ):  # fmt: skip
        event = by_reason[reason]
        assert (event["type"], event["message"]) == ("Normal", message)
        assert event["involvedObject"]["fieldPath"] == "spec.containers{busybox}"
        assert event["source"] == {"component": "kubelet", "host": localnode.NODE_NAME}
        assert event["reportingComponent"] == "kubelet"
        assert event["reportingInstance"] == localnode.NODE_NAME

    # The events.k8s.io/v1 view of the same Events (what `kubectl events` reads).
    new_api = json.loads(
        kube.kubectl("get", "events.v1.events.k8s.io", "-n", ns, "-o", "json").stdout
    )["items"]
    started = next(e for e in new_api if e["reason"] == "Started")
    assert started["reportingController"] == "kubelet"
    assert started["regarding"]["name"] == "busybox"
    assert started["note"] == "Container started"

    described = kube.kubectl("describe", "pod", "busybox", "-n", ns).stdout
    for line in ("Scheduled", "Pulled", "Container created", "Container started"):
        assert line in described


CRASHER = """
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  containers:
  - {name: app, image: busybox, command: [sh, -c, "echo crashing; exit 1"]}
"""


def test_a_crash_looping_pod_shows_backoff_in_describe(kube: Kube, ns: str) -> None:
    kube.apply(CRASHER, ns)
    found = waiting.eventually(having(kube, ns, "crasher", "BackOff"), 60, "a BackOff event", 0.5)
    uid = next(e for e in found if e["reason"] == "BackOff")["involvedObject"]["uid"]
    backoff = next(e for e in found if e["reason"] == "BackOff")
    assert backoff["type"] == "Warning"
    assert backoff["message"] == (
        f"Back-off restarting failed container app in pod crasher_{ns}({uid})"
    )
    described = kube.kubectl("describe", "pod", "crasher", "-n", ns).stdout
    events_section = described.split("Events:", 1)[1]
    assert "BackOff" in events_section
    assert "Back-off restarting failed container app in pod" in events_section
    # Restarts are one Created/Started Event each whose count grows, not one Event per restart.
    started = waiting.eventually(
        lambda: [
            e for e in events(kube, ns, "crasher") if e["reason"] == "Started" and e["count"] >= 2
        ],
        60,
        "a second start counted on the same Event",
        0.5,
    )
    assert len(started) == 1


PROBED = """
apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "sleep 3600"]
    livenessProbe: {exec: {command: [cat, /no/such/file]}, periodSeconds: 1, failureThreshold: 2}
"""


def test_a_failing_liveness_probe_is_unhealthy_then_killing(kube: Kube, ns: str) -> None:
    kube.apply(PROBED, ns)
    found = waiting.eventually(
        having(kube, ns, "probed", "Unhealthy", "Killing"), 90, "Unhealthy and Killing", 0.5
    )
    unhealthy = next(e for e in found if e["reason"] == "Unhealthy")
    assert unhealthy["type"] == "Warning"
    assert unhealthy["message"].startswith("Liveness probe failed: ")
    killing = next(e for e in found if e["reason"] == "Killing")
    assert killing["message"] == "Container app failed liveness probe, will be restarted"


SLEEPER = """
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - {name: app, image: busybox, command: [sh, -c, "sleep 3600"]}
"""


def test_deleting_a_running_pod_records_stopping_container(kube: Kube, ns: str) -> None:
    kube.apply(SLEEPER, ns)
    waiting.eventually(having(kube, ns, "sleeper", "Started"), 60, "the sleeper to start", 0.5)
    kube.kubectl("delete", "pod", "sleeper", "-n", ns, "--wait=false")
    found = waiting.eventually(having(kube, ns, "sleeper", "Killing"), 60, "a Killing event", 0.5)
    killing = next(e for e in found if e["reason"] == "Killing")
    assert (killing["type"], killing["message"]) == ("Normal", "Stopping container app")
