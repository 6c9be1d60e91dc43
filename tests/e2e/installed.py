"""The installed system for the e2e tests that use it: `hack/up --no-follow` once per session.

The README's main-job command installs manifests/ + rbac/ + examples/ on the local cluster;
the main-job tests check what it shows, the broker tests add their own objects to it.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import cluster, waiting
from tests.e2e import eventlog


@dataclass(frozen=True)
class MainJob:
    output: str
    event_page: str
    prometheus: str
    zipkin: str


def get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as answer:
        answer.close()  # an error answer holds its connection until closed
        raise


def recorded_events(ip: str) -> list[dict[str, Any]]:
    """What the sink pod at `ip` recorded (`GET :8080/events`, as event-display and the
    tutorial's receivers serve it); empty while it does not answer yet (callers poll)."""
    try:
        with urllib.request.urlopen(f"http://{ip}:8080/events", timeout=3) as response:
            return list(json.load(response))
    except urllib.error.HTTPError as answer:
        answer.close()  # an error answer holds its connection until closed
        return []
    except OSError:
        return []


KNATIVE_DISPLAY = re.compile(r"/cmd/(event_display|message_dumper)$")
"""Repositories of Knative's event_display images (releases, nightly, eventing-contrib and the
2018-2019 eventing-sources names, message_dumper among them): the program keeps no list."""


def _repository(image: str) -> str:
    """`image` without its digest and tag."""
    name = image.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def pod_events(kube: cluster.Kube, pod: dict[str, Any]) -> list[dict[str, Any]]:
    """What one sink pod received, in the shape of `recorded_events`: from the log of a
    container running Knative's event_display (`eventlog`: it serves no list; kevents'
    stand-in prints the same log), else from the pod's `GET :8080/events`. Empty while the
    pod has not started (callers poll)."""
    meta = pod["metadata"]
    for container in pod["spec"]["containers"]:
        if KNATIVE_DISPLAY.search(_repository(container["image"])):
            proc = kube.kubectl(
                "-n", meta["namespace"], "logs", meta["name"], "-c", container["name"],
                check=False,
            )  # fmt: skip
            return eventlog.parse(proc.stdout) if proc.returncode == 0 else []
    ip = (pod.get("status") or {}).get("podIP")
    return recorded_events(ip) if ip else []


@pytest.fixture(scope="session")
def main_job(kube: cluster.Kube, pytestconfig: pytest.Config) -> Iterator[MainJob]:
    proc = subprocess.run(
        [str(cluster.REPO / "hack" / "up"), "--no-follow"],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    # hack/up's numbered steps, build progress and per-step times, shown in the test log
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        sys.stdout.write(f"\n--- hack/up --no-follow (exit {proc.returncode}) ---\n"
                         f"{proc.stdout}--- its stderr ---\n{proc.stderr[-6000:]}"
                         "--- end of hack/up ---\n")  # fmt: skip
    assert proc.returncode == 0, f"hack/up failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    out = proc.stdout

    def url(label: str) -> str:
        match = re.search(rf"{label}:\s+(http://\S+)", out)
        assert match, f"hack/up did not print the {label} URL:\n{out}"
        return match.group(1)

    assert "Events flowing." in out
    yield MainJob(out, url("event page"), url("Prometheus"), url("Zipkin"))


SYSTEM_NAMESPACE = "kevents-system"

REFUSED_BY_THE_WEBHOOK = """
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: health-check, namespace: default}
spec:
  broker: default
  filters: [{cesql: "type = "}]
  subscriber: {uri: "http://example.invalid"}
"""
"""A Trigger only the validating webhook refuses (the schema takes any CESQL string): its refusal
on a server-side dry run shows the apiserver reaches the webhook through its Service, with
failurePolicy Fail or Ignore alike, and stores nothing."""


def _answers_http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return 200 <= int(resp.status) < 400
    except urllib.error.HTTPError as refusal:
        refusal.close()  # it holds the connection
        return False
    except OSError:
        return False


def _accepts_tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def _probe_url(pod: dict[str, Any], container: dict[str, Any]) -> str | None:
    """The readiness probe's URL at the pod's current IP (None without an httpGet probe)."""
    get = (container.get("readinessProbe") or {}).get("httpGet")
    ip = (pod.get("status") or {}).get("podIP")
    if not get or not ip:
        return None
    port = get["port"]
    if isinstance(port, str):
        named = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
        port = named.get(port, port)
    return f"http://{ip}:{port}{get.get('path', '/')}"


def system_problems(kube: cluster.Kube) -> list[str]:
    """What keeps the installed kevents from serving; empty when it is healthy.

    Reported status alone can be stale after a node restart (the pods' status is the one
    written before it), so each check is one a user's request would make: every Deployment
    that should run is available, every pod's readiness endpoint answers at the pod's
    current IP, every Service of kevents-system in front of its pods accepts connections
    through kube-proxy, and the apiserver gets the validating webhook's answer."""
    problems: list[str] = []
    deployments = kube.get_json("-n", SYSTEM_NAMESPACE, "deployments")["items"]
    assert isinstance(deployments, list)
    for d in deployments:
        name, spec, status = d["metadata"]["name"], d["spec"], d.get("status") or {}
        want = int(spec.get("replicas", 1))
        if want == 0:
            continue  # paused on purpose (tests.cluster pauses it for in-process reconcilers)
        current = int(status.get("observedGeneration", 0)) >= int(d["metadata"]["generation"])
        counts = [int(status.get(k, 0)) for k in ("updatedReplicas", "readyReplicas",
                                                  "availableReplicas")]  # fmt: skip
        if not current or counts != [want] * 3:
            problems.append(f"deployment {name}: {want} wanted, updated/ready/available {counts}")
    pods = kube.get_json("-n", SYSTEM_NAMESPACE, "pods")["items"]
    assert isinstance(pods, list)
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        for container in pod["spec"]["containers"]:
            url = _probe_url(pod, container)
            if url is not None and not _answers_http(url):
                problems.append(f"pod {pod['metadata']['name']}: {url} does not answer")
    services = kube.get_json("-n", SYSTEM_NAMESPACE, "services")["items"]
    assert isinstance(services, list)
    for svc in services:
        ip = svc["spec"].get("clusterIP")
        if not ip or ip == "None" or not svc["spec"].get("selector"):
            continue  # headless, or not routed to our pods (hack's `zipkin` on the host)
        for port in svc["spec"].get("ports") or []:
            if not _accepts_tcp(ip, int(port["port"])):
                problems.append(f"service {svc['metadata']['name']}: {ip}:{port['port']} refuses")
    controller = next(
        (d for d in deployments if d["metadata"]["name"] == "kevents-controller"), None
    )
    if controller is not None and int(controller["spec"].get("replicas", 1)) > 0:
        proc = kube.kubectl(
            "create", "--dry-run=server", "-f", "-", input=REFUSED_BY_THE_WEBHOOK, check=False
        )
        if 'admission webhook "validation.webhook.eventing.knative.dev" denied' not in proc.stderr:
            problems.append(f"the validating webhook did not answer: {proc.stderr.strip()!r}")
    return problems


def wait_system_healthy(kube: cluster.Kube, within: float) -> None:
    """Wait until `system_problems` finds nothing; fail listing what is still wrong."""
    waiting.eventually(
        lambda: system_problems(kube), within, "the installed kevents healthy",
        ok=lambda problems: not problems,
    )  # fmt: skip
