"""Pods on the images hack/build-images built, run by the node agent through runc (issue 23).

A pod annotated `agent.kevents.dev/runtime: runc` runs from its image on either runtime of
the agent, so what the image and the pod's securityContext promise is checked on both: a
read-only root filesystem refuses a write by root itself, while a volume stays writable (an
emptyDir by any user, as the kubelet makes it) and a sibling container without the setting
writes its own root; all report the built digest as their imageID. On an agent whose runtime
is runc (hack/test's e2e tier), every kevents container of the main job and its Knative
event_display report the digest built for their reference: what runs is the image, not the
checkout.
"""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

from hack.agent import imagestore
from tests import cluster, waiting
from tests.e2e import installed, scenarios

# The first run on a machine builds the images (`built`): minutes, more than the 300 s default.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    """Every built reference (`docker.io/library/busybox:latest`) -> its manifest digest, from
    hack/build-images' images.json (a cache hit once the images are built)."""
    out = subprocess.run(
        [str(cluster.REPO / "hack" / "build-images")], capture_output=True, text=True, check=True
    ).stdout
    folder = pathlib.Path(out.strip().splitlines()[-1])
    images = json.loads((folder / "images.json").read_text())["images"]
    return {ref: item["digest"] for item in images for ref in item["refs"]}


def image_id(built: dict[str, str], reference: str) -> str:
    """The imageID a container of `reference` reports when it runs the built image."""
    repository, tag, _ = imagestore.normalise(reference)
    return f"{repository}@{built[repository + ':' + (tag or 'latest')]}"


READ_ONLY = """
apiVersion: v1
kind: Pod
metadata:
  name: read-only
  annotations: {agent.kevents.dev/runtime: runc}
spec:
  restartPolicy: Never
  volumes: [{name: scratch, emptyDir: {}}]
  containers:
  - name: read-only
    image: busybox
    command: [sh, -c, "touch /probe; echo root=$?; touch /scratch/probe; echo scratch=$?"]
    securityContext: {runAsUser: 0, readOnlyRootFilesystem: true}
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  - name: writable
    image: busybox
    command: [sh, -c, "touch /probe; echo root=$?"]
    securityContext: {runAsUser: 0}
  - name: nonroot
    image: busybox
    command: [sh, -c, "touch /scratch/nonroot; echo scratch=$?"]
    securityContext: {runAsUser: 65532, readOnlyRootFilesystem: true}
    volumeMounts: [{name: scratch, mountPath: /scratch}]
"""


def test_a_read_only_root_filesystem_refuses_writes_even_by_root(
    kube: cluster.Kube, built: dict[str, str]
) -> None:
    with scenarios.namespace(kube, "images") as ns:
        kube.apply(READ_ONLY, ns)
        pod = waiting.eventually(
            lambda: (p := scenarios.get(kube, ns, "pod/read-only")).get("status", {}).get("phase")
            in ("Succeeded", "Failed") and p,
            120, "the read-only pod finished", 1.0,
        )  # fmt: skip
        logs = {
            name: kube.kubectl("-n", ns, "logs", "read-only", "-c", name).stdout
            for name in ("read-only", "writable", "nonroot")
        }
        assert "Read-only file system" in logs["read-only"], logs
        assert "root=1" in logs["read-only"].splitlines(), logs
        assert "scratch=0" in logs["read-only"].splitlines(), logs
        assert logs["writable"].splitlines() == ["root=0"], logs
        # an emptyDir is writable by any user, as the kubelet makes it (the components' /tmp)
        assert logs["nonroot"].splitlines() == ["scratch=0"], logs
        statuses = pod["status"]["containerStatuses"]
        assert {s["imageID"] for s in statuses} == {image_id(built, "busybox")}


def _installed_containers(kube: cluster.Kube) -> list[tuple[str, str, str]]:
    """(namespace/pod/container, image, imageID) of every running container of kevents
    (kevents-system's and the main job's adapters, images `kevents/*`) and of the main job's
    Knative event_display."""
    found = []
    for ns in (installed.SYSTEM_NAMESPACE, "kevents-demo"):
        pods = kube.get_json("pods", "-n", ns)["items"]
        assert isinstance(pods, list)
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            statuses = {s["name"]: s for s in pod["status"].get("containerStatuses") or []}
            for container in pod["spec"]["containers"]:
                repository = imagestore.normalise(container["image"])[0]
                ours = repository.startswith("docker.io/kevents/")
                if not ours and not installed.KNATIVE_DISPLAY.search(repository):
                    continue
                status = statuses.get(container["name"]) or {}
                if "running" in (status.get("state") or {}):
                    where = f"{ns}/{pod['metadata']['name']}/{container['name']}"
                    found.append((where, container["image"], status.get("imageID", "")))
    return found


def test_every_kevents_pod_runs_the_image_built_for_it(
    kube: cluster.Kube, main_job: installed.MainJob, built: dict[str, str]
) -> None:
    """The e2e tier on the agent's runc runtime (hack/test): what runs is the built image, not
    the checkout (a process runtime reports no digest)."""
    installed.wait_system_healthy(kube, 180)
    running = _installed_containers(kube)
    names = " ".join(where for where, _, _ in running)
    wanted = ("kevents-controller", "kevents-dispatcher", "kevents-demo/event-display",
              "kevents-demo/event-page", "kevents-demo/apiserversource-k8s-events")  # fmt: skip
    assert [w for w in wanted if w not in names] == [], running
    wrong = [(where, image, got) for where, image, got in running if got != image_id(built, image)]
    assert wrong == [], f"containers not on their built image: {wrong}"
