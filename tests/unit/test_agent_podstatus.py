"""Pod status from the agent's runtime view: phase, conditions, container statuses."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from hack.agent import podstatus

T0 = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(seconds=30)
POD: dict[str, Any] = {"metadata": {"name": "p"}, "status": {"conditions": []}}


def running(name: str = "app", ready: bool = True) -> podstatus.ContainerRuntime:
    return podstatus.ContainerRuntime(
        name=name, image="python:3.11", running_since=T0, ready=ready, started=True
    )


def exited(code: int, *, done: bool = True) -> podstatus.ContainerRuntime:
    term = podstatus.Terminated(
        exit_code=code, reason="Completed" if code == 0 else "Error", started_at=T0, finished_at=T1
    )
    return podstatus.ContainerRuntime(name="app", image="python:3.11", terminated=term, done=done)


def crashlooping() -> podstatus.ContainerRuntime:
    c = podstatus.ContainerRuntime(name="app", image="i", waiting_reason="CrashLoopBackOff")
    c.last_terminated = podstatus.Terminated(1, "Error", T0, T1)
    c.restart_count = 3
    return c


@pytest.mark.parametrize(
    ("policy", "initialized", "containers", "phase"),
    [
        ("Always", False, [running()], "Pending"),
        ("Always", True, [podstatus.ContainerRuntime(name="app", image="i")], "Pending"),
        ("Always", True, [running()], "Running"),
        ("Always", True, [crashlooping()], "Running"),
        ("Never", True, [exited(0)], "Succeeded"),
        ("Never", True, [exited(2)], "Failed"),
        ("OnFailure", True, [exited(0)], "Succeeded"),
        ("OnFailure", True, [exited(1, done=False)], "Running"),
        ("Never", True, [running(), exited(0)], "Running"),
    ],
    ids=[
        "init",
        "waiting",
        "running",
        "crashloop",
        "done-ok",
        "done-failed",
        "onfailure-ok",
        "onfailure-retry",
        "one-left",
    ],
)
def test_phase(
    policy: str, initialized: bool, containers: list[podstatus.ContainerRuntime], phase: str
) -> None:
    rt = podstatus.PodRuntime(restart_policy=policy, containers=containers, initialized=initialized)
    assert podstatus.phase(rt) == phase


def test_build_running_ready_pod() -> None:
    rt = podstatus.PodRuntime(
        containers=[running()],
        pod_ip="10.244.0.5",
        host_ip="127.0.0.1",
        start_time=T0,
        sandbox_ready=True,
        initialized=True,
    )
    status = podstatus.build(POD, rt, T1)
    assert status["phase"] == "Running"
    assert status["podIP"] == "10.244.0.5"
    assert status["podIPs"] == [{"ip": "10.244.0.5"}]
    assert status["hostIP"] == "127.0.0.1"
    assert status["startTime"] == "2026-01-02T03:04:05Z"
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    assert conds == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    (cs,) = status["containerStatuses"]
    assert cs["state"] == {"running": {"startedAt": "2026-01-02T03:04:05Z"}}
    assert (cs["ready"], cs["started"], cs["restartCount"]) == (True, True, 0)


def test_unready_message_names_the_waiting_reason() -> None:
    waiting = podstatus.ContainerRuntime(
        name="app",
        image="nope",
        waiting_reason="ImagePullBackOff",
        waiting_message='image "nope" is not known',
    )
    rt = podstatus.PodRuntime(containers=[waiting], initialized=True, sandbox_ready=True)
    status = podstatus.build(POD, rt, T1)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "ContainersNotReady"
    assert ready["message"] == (
        'containers with unready status: [app] (app: ImagePullBackOff: image "nope" is not known)'
    )
    assert status["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "ImagePullBackOff", "message": 'image "nope" is not known'}
    }


def test_transition_time_kept_while_status_unchanged() -> None:
    before = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ]
        }
    }
    rt = podstatus.PodRuntime(containers=[running()], initialized=True, sandbox_ready=True)
    ready = next(c for c in podstatus.build(before, rt, T1)["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    rt.containers[0].ready = False
    ready = next(c for c in podstatus.build(before, rt, T1)["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-01-02T03:04:35Z"


def test_restart_shows_last_state() -> None:
    c = crashlooping()
    doc = c.to_json()
    assert doc["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert doc["lastState"]["terminated"]["exitCode"] == 1
    assert doc["restartCount"] == 3
