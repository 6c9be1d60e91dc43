"""`hack/cluster status` on the shared cluster (issue 25): JSON when piped (what hack/up and
the tests read), the human summary with --human, JSON again with --json."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests import cluster

pytestmark = pytest.mark.cluster


def _status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hack.localcluster", "status", *args],
        cwd=cluster.REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_status_is_json_when_piped_and_a_summary_when_asked(kube: cluster.Kube) -> None:
    piped = _status()
    assert piped.returncode == 0, piped.stderr
    info = json.loads(piped.stdout)
    assert json.loads(_status("--json").stdout)["apiserver"] == info["apiserver"]
    apiserver = next(p for p in info["processes"] if p["name"] == "kube-apiserver")
    assert apiserver["alive"] and apiserver["uptime_seconds"] > 0

    human = _status("--human")
    assert human.returncode == 0, human.stderr
    text = human.stdout
    assert text.startswith(f"cluster: ready ({info['apiserver']}), state in {info['state']}\n")
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("kube-apiserver "))
    assert f"running   pid {apiserver['pid']}   up " in line
    assert f"ports apiserver {info['ports']['apiserver']}" in line
    assert f"KUBECONFIG={info['kubeconfig']}" in text
    if info["kafka"]:
        assert f"bootstrap (PLAINTEXT)        {info['kafka']['bootstrap']}" in text
