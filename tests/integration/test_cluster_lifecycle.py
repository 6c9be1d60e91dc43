"""`hack/cluster up/status/down` on a second, private cluster (its own state folder and ports)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

from hack import processes
from tests import cluster

pytestmark = pytest.mark.cluster

CLI = cluster.REPO / "hack" / "cluster"


def _run(state: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEVENTS_STATE": str(state)}
    return subprocess.run(
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_up_is_idempotent_and_down_leaves_no_process(
    kube: cluster.Kube, tmp_path: pathlib.Path
) -> None:
    # `kube` first: the shared cluster (and the binary build) exists before the private one.
    state = tmp_path / "state"
    first = _run(state, "up")
    assert first.returncode == 0, first.stderr
    try:
        status = json.loads(_run(state, "status").stdout)
        assert status["ready"] is True
        pids = {p["name"]: p["pid"] for p in status["processes"]}
        assert set(pids) >= {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

        again = _run(state, "up")
        assert again.returncode == 0
        assert "already running" in again.stderr
        status_again = json.loads(_run(state, "status").stdout)
        assert {p["name"]: p["pid"] for p in status_again["processes"]} == pids
    finally:
        down = _run(state, "down")
    assert down.returncode == 0, down.stderr
    for name, pid in pids.items():
        assert processes.start_ticks(pid) is None, f"{name} (pid {pid}) still runs"
    after = json.loads(_run(state, "status").stdout)
    assert after["ready"] is False
    assert after["processes"] == []
    # data is kept unless asked: a later `up` reuses etcd's data
    assert (state / "cluster" / "etcd").is_dir()
    wipe = _run(state, "down", "--wipe")
    assert wipe.returncode == 0
    assert not (state / "cluster").exists()


def test_failed_start_prints_the_log_tail(kube: cluster.Kube, tmp_path: pathlib.Path) -> None:
    state = tmp_path / "state"
    # A bogus etcd data dir (a file where a directory must be) makes etcd exit at once.
    (state / "cluster").mkdir(parents=True)
    (state / "cluster" / "etcd").write_text("not a directory")
    result = _run(state, "up")
    try:
        assert result.returncode == 1
        assert "etcd exited during start-up" in result.stderr
        assert "last lines of" in result.stderr
    finally:
        _run(state, "down", "--wipe")
