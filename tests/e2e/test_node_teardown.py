"""`hack/cluster down` leaves no process, network namespace, link or nftables rule of ours.

This test stops the whole local cluster and starts it again, so it restores what it breaks
and proves it: later tests find the cluster up (same state folder and certificates) and the
installed kevents serving again (`installed.wait_system_healthy`: Deployments available, each
pod's readiness endpoint answering at its new IP, kevents-system's Services routed, the
admission webhook answering the apiserver), not only the control plane's processes running.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import time

import pytest

from hack import processes
from hack.agent import network
from tests import waiting
from tests.cluster import REPO, Kube
from tests.e2e import installed

pytestmark = pytest.mark.cluster

SLEEPER = """
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  containers: [{name: app, image: busybox, command: [sh, -c, "trap '' TERM; sleep 3600"]}]
"""


def recorded(state: pathlib.Path) -> list[processes.Recorded]:
    raw = json.loads((state / "state.json").read_text())
    return [processes.Recorded(**p) for p in raw.get("processes", [])]


def test_down_leaves_nothing_behind(kube: Kube, main_job: installed.MainJob) -> None:
    assert kube.state_dir is not None, "needs the local cluster"
    installed.wait_system_healthy(kube, 120)  # what this test must give back
    ns = f"teardown-{int(time.time())}"
    kube.kubectl("create", "namespace", ns)
    kube.apply(SLEEPER, ns)
    waiting.eventually(
        lambda: kube.kubectl(
            "get", "pod", "-n", ns, "sleeper", "-o", "jsonpath={.status.phase}", check=False
        ).stdout,
        60, "the sleeper pod running", 0.5, ok=lambda phase: phase == "Running",
    )  # fmt: skip
    running = recorded(kube.state_dir)
    names = {p.name for p in running}
    assert {"kevents-agent", "kube-proxy", "coredns"} <= names
    pidfiles = list((kube.state_dir / "agent" / "pods").glob("*/pids/app"))
    assert pidfiles
    containers = []
    for f in pidfiles:
        pid, ticks = f.read_text().split()
        containers.append(processes.Recorded("app", int(pid), int(ticks), ""))
    assert network.leftovers(), "a running cluster has its bridge and rules"

    try:
        down = subprocess.run(
            [str(REPO / "hack" / "cluster"), "down"], capture_output=True, text=True, timeout=120
        )
        assert down.returncode == 0, down.stderr
        assert not [p for p in running if processes.alive(p)]
        assert not [p for p in containers if processes.alive(p)]
        assert network.leftovers() == []
        netns = pathlib.Path("/run/netns")
        assert not netns.exists() or not [e for e in netns.iterdir() if e.name.startswith("kev")]
    finally:
        # Prometheus and Zipkin too when they ran (hack/up's): the installed components trace
        # to the `zipkin` Service of kevents-system, which the health check below connects to.
        observability = ["--observability"] if "zipkin" in names else []
        up = subprocess.run(
            [str(REPO / "hack" / "cluster"), "up", *observability],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert up.returncode == 0, up.stderr
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        # The node agent restarts every pod (new processes, new IPs); until the controller
        # serves again its webhook (failurePolicy Fail) refuses every write of kevents' kinds.
        installed.wait_system_healthy(kube, 180)
