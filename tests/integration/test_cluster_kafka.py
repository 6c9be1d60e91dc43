"""`hack/cluster up --kafka` on a second, private cluster: Kafka joins a running cluster,
`status` reports its addresses, `down` stops it keeping its log (a topic survives a restart)
and `down --wipe` removes it."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

from hack import processes
from kevents import kafka
from tests import cluster

pytestmark = pytest.mark.cluster

CLI = cluster.REPO / "hack" / "cluster"


def _run(state: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEVENTS_STATE": str(state)}
    return subprocess.run(
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=900, check=False
    )


def _kafka(state: pathlib.Path) -> tuple[dict[str, str], dict[str, str], int]:
    """`status`'s kafka addresses, the credentials file they point to, Kafka's pid."""
    status = json.loads(_run(state, "status").stdout)
    pids = [p["pid"] for p in status["processes"] if p["name"] == "kafka" and p["alive"]]
    assert len(pids) == 1, status["processes"]
    credentials = json.loads(pathlib.Path(status["kafka"]["credentials"]).read_text())
    return status["kafka"], credentials, pids[0]


async def test_kafka_joins_a_running_cluster_and_down_stops_it(
    kube: cluster.Kube, tmp_path: pathlib.Path
) -> None:
    # `kube` first: the shared cluster (and the binary build) exists before the private one.
    state = tmp_path / "state"
    first = _run(state, "up")
    assert first.returncode == 0, first.stderr
    try:
        added = _run(state, "up", "--kafka")
        assert added.returncode == 0, added.stderr
        assert "already running" in added.stderr
        info, credentials, pid = _kafka(state)
        assert info["bootstrap"] == credentials["bootstrap"]
        assert info["sasl_bootstrap"] == credentials["sasl_bootstrap"]
        auth = kafka.KafkaAuth.from_data(
            {"protocol": "SASL_PLAINTEXT", "user": credentials["user"],
             "password": credentials["password"]}
        )  # fmt: skip
        config = kafka.client_config(info["sasl_bootstrap"], auth)
        assert await kafka.ensure_topic(config, "kept", partitions=2) is True

        stopped = _run(state, "down")
        assert stopped.returncode == 0, stopped.stderr
        assert processes.start_ticks(pid) is None, "kafka still runs after down"
        again = _run(state, "up", "--kafka")
        assert again.returncode == 0, again.stderr
        _kafka(state)
        # the log is kept: the topic exists after the restart
        assert await kafka.ensure_topic(config, "kept", partitions=2) is False
    finally:
        down = _run(state, "down", "--wipe")
    assert down.returncode == 0, down.stderr
    assert not (state / "cluster" / "kafka").exists()
