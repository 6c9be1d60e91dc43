"""The kubelet Events one container of the node agent records, in order, with real processes
(`hack.agent.containers.Container`): a crash loop, a failing liveness probe, a pod stop and an
unknown image. The pod's side is a small stand-in recording what the container reports."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

from hack.agent import containers, errors

Obj = dict[str, Any]


class Pod:
    """What a container needs from its pod worker (`containers.Pod`), recording Events."""

    def __init__(self, tmp: pathlib.Path, *, image_known: bool = True) -> None:
        self.stopping = asyncio.Event()
        self.grace = 1.0
        self.host_ip = self.pod_ip = "127.0.0.1"
        self.name = "ns/crasher"
        self.tmp = tmp
        self.image_known = image_known
        self.events: list[tuple[str, str, str, str]] = []

    @property
    def formatted(self) -> str:
        return "crasher_ns(uid-1)"

    async def launch(self, spec: Obj) -> containers.Launch:
        if not self.image_known:
            raise errors.UnknownImage(f'image "{spec["image"]}" is not known')
        return containers.Launch(argv=list(spec["command"]), env={"PATH": "/usr/bin:/bin"})

    def changed(self) -> None:
        pass

    def log_dir(self, container: str) -> pathlib.Path:
        return self.tmp / container

    def record_pid(self, container: str, pid: int | None) -> None:
        pass

    def event(self, container: str, *, init: bool, type_: str, reason: str, message: str) -> None:
        self.events.append((container, type_, reason, message))

    def reasons(self) -> list[str]:
        return [reason for _, _, reason, _ in self.events]


async def until(check: Any, within: float = 20.0) -> None:
    for _ in range(int(within / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached")


def container(pod: Pod, **spec: Any) -> containers.Container:
    return containers.Container(
        pod, {"name": "app", "image": "busybox", **spec}, init=False, restart_policy="Always",
        backoff=containers.Backoff(base=0.2, cap=0.2),
    )  # fmt: skip


async def test_a_crash_loop_records_pulled_created_started_then_backoff(
    tmp_path: pathlib.Path,
) -> None:
    pod = Pod(tmp_path)
    app = container(pod, command=["sh", "-c", "exit 1"])
    async with asyncio.TaskGroup() as tg:
        tg.create_task(app.run())
        await until(lambda: pod.reasons().count("BackOff") >= 2)
        pod.stopping.set()
    assert pod.reasons()[:7] == [
        "Pulled", "Created", "Started",  # first run: restarted at once
        "Pulled", "Created", "Started",
        "BackOff",  # second crash: back-off
    ]  # fmt: skip
    assert pod.events[0] == (
        "app", "Normal", "Pulled",
        'Container image "busybox" already present on machine and can be accessed by the pod',
    )  # fmt: skip
    assert pod.events[1][1:] == ("Normal", "Created", "Container created")
    assert pod.events[2][1:] == ("Normal", "Started", "Container started")
    assert pod.events[6][1:] == (
        "Warning",
        "BackOff",
        "Back-off restarting failed container app in pod crasher_ns(uid-1)",
    )


async def test_a_failing_liveness_probe_is_unhealthy_then_killing(tmp_path: pathlib.Path) -> None:
    pod = Pod(tmp_path)
    probe = {"exec": {"command": ["false"]}, "periodSeconds": 0.1, "failureThreshold": 2}
    app = container(pod, command=["sleep", "30"], livenessProbe=probe)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(app.run())
        await until(lambda: "Killing" in pod.reasons())
        pod.stopping.set()
    unhealthy = [e for e in pod.events if e[2] == "Unhealthy"]
    assert len(unhealthy) >= 2
    assert unhealthy[0][1] == "Warning"
    assert unhealthy[0][3].startswith("Liveness probe failed: ")
    killing = next(e for e in pod.events if e[2] == "Killing")
    assert killing[1:] == (
        "Normal",
        "Killing",
        "Container app failed liveness probe, will be restarted",
    )


async def test_stopping_the_pod_records_stopping_container(tmp_path: pathlib.Path) -> None:
    pod = Pod(tmp_path)
    app = container(pod, command=["sleep", "30"])
    async with asyncio.TaskGroup() as tg:
        tg.create_task(app.run())
        await until(lambda: "Started" in pod.reasons())
        pod.stopping.set()
    assert pod.events[-1][1:] == ("Normal", "Killing", "Stopping container app")


async def test_an_unknown_image_is_a_failed_pull(tmp_path: pathlib.Path) -> None:
    pod = Pod(tmp_path, image_known=False)
    app = container(pod, command=["true"])
    async with asyncio.TaskGroup() as tg:
        tg.create_task(app.run())
        await until(lambda: "Failed" in pod.reasons())
        pod.stopping.set()
    assert pod.events[0][1:] == (
        "Warning",
        "Failed",
        'Failed to pull image "busybox": image "busybox" is not known',
    )
