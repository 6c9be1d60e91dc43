"""How a container process is launched, and the pod's resolv.conf (pure parts)."""

from __future__ import annotations

import pathlib
from typing import Any

from hack.agent import containers, pods


def test_launch_script_mounts_then_execs() -> None:
    launch = containers.Launch(
        argv=["python", "-c", "print('hi there')"],
        env={},
        workdir="/srv",
        mounts=[
            containers.Mount(pathlib.Path("/state/v/token"), "/var/run/secrets/x", read_only=True),
            containers.Mount(
                pathlib.Path("/state/etc/resolv.conf"), "/etc/resolv.conf", is_file=True
            ),
            containers.Mount(pathlib.Path("/state/v/work"), "/data"),
        ],
        hostname="web-1",
        netns_path="/run/netns/kev-abc",
    )
    assert containers.launch_script(launch).splitlines() == [
        "#!/bin/sh",
        "set -e",
        "hostname web-1",
        "mkdir -p /run/kevents-stage",
        "mount -t tmpfs kevents-stage /run/kevents-stage",
        "mkdir /run/kevents-stage/0",
        "mount --bind /state/v/token /run/kevents-stage/0",
        "touch /run/kevents-stage/1",
        "mount --bind /state/etc/resolv.conf /run/kevents-stage/1",
        "mkdir /run/kevents-stage/2",
        "mount --bind /state/v/work /run/kevents-stage/2",
        "mount --bind /run/kevents-stage/2 /data",
        "mount --bind /run/kevents-stage/1 /etc/resolv.conf",
        "mount --bind /run/kevents-stage/0 /var/run/secrets/x",
        "mount -o remount,bind,ro /var/run/secrets/x",
        "cd /srv",
        "exec python -c 'print('\"'\"'hi there'\"'\"')'",
    ]
    assert containers.wrapper_argv(launch, pathlib.Path("/s.sh")) == [
        "nsenter", "--net=/run/netns/kev-abc", "--",
        "unshare", "--mount", "--propagation", "private", "--uts", "--", "/bin/sh", "/s.sh",
    ]  # fmt: skip


def test_backoff_and_exit_codes() -> None:
    b = containers.Backoff(base=10, cap=300)
    assert [b.delay(n) for n in range(1, 8)] == [0, 10, 20, 40, 80, 160, 300]
    assert containers.exit_code(-9) == (137, 9)
    assert containers.exit_code(3) == (3, None)


def test_resolv_conf_cluster_first_with_dns_config() -> None:
    pod: dict[str, Any] = {
        "metadata": {"namespace": "shop"},
        "spec": {
            "dnsConfig": {
                "searches": ["example.test"],
                "options": [{"name": "ndots", "value": "2"}],
            }
        },
    }
    assert pods.resolv_conf(pod, "10.96.0.10", "cluster.local", "nameserver 9.9.9.9\n") == (
        "nameserver 10.96.0.10\n"
        "search shop.svc.cluster.local svc.cluster.local cluster.local example.test\n"
        "options ndots:2\n"
    )
    default: dict[str, Any] = {"metadata": {"namespace": "shop"}, "spec": {"dnsPolicy": "Default"}}
    assert pods.resolv_conf(default, "10.96.0.10", "cluster.local", "nameserver 9.9.9.9\n") == (
        "nameserver 9.9.9.9\n"
    )


def test_a_volume_over_the_project_binds_the_project_back() -> None:
    parent = str(pathlib.Path(containers.PROJECT).parent)
    launch = containers.Launch(
        argv=["python", "-m", "controller"],
        env={},
        mounts=[containers.Mount(pathlib.Path("/state/pod/tmp"), parent)],
    )
    lines = containers.launch_script(launch).splitlines()
    over = lines.index(f"mount --bind {containers.STAGE}/0 {parent}")
    back = lines.index(f"mount --bind {containers.STAGE}/project {containers.PROJECT}")
    assert over < back < lines.index("exec python -m controller")


def test_volumes_elsewhere_leave_the_project_alone() -> None:
    launch = containers.Launch(
        argv=["true"], env={}, mounts=[containers.Mount(pathlib.Path("/s/v"), "/data")]
    )
    assert "project" not in containers.launch_script(launch)
