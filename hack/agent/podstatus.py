"""Pure: a pod's runtime state -> its `status` as the kubelet reports it.

Phase follows the kubelet's rules: Pending while init containers run or a container waits
for its first start; Running while any container runs (or will be restarted); Succeeded or
Failed once every container has stopped for good.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Terminated:
    """How a container process ended."""

    exit_code: int
    reason: str
    started_at: datetime.datetime
    finished_at: datetime.datetime
    signal: int | None = None
    message: str = ""
    container_id: str = ""

    def to_json(self) -> Obj:
        doc: Obj = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": rfc3339(self.started_at),
            "finishedAt": rfc3339(self.finished_at),
        }
        if self.signal is not None:
            doc["signal"] = self.signal
        if self.message:
            doc["message"] = self.message
        if self.container_id:
            doc["containerID"] = self.container_id
        return doc


@dataclass
class ContainerRuntime:
    """The agent's view of one container: what its status entry is built from."""

    name: str
    image: str
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    running_since: datetime.datetime | None = None
    terminated: Terminated | None = None
    last_terminated: Terminated | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    done: bool = False
    """Stopped for good (no restart will follow)."""
    container_id: str = ""
    image_id: str = ""
    """`<repository>@<manifest digest>` of the image it runs (runc runtime)."""

    def state_json(self) -> Obj:
        if self.running_since is not None:
            return {"running": {"startedAt": rfc3339(self.running_since)}}
        if self.terminated is not None:
            return {"terminated": self.terminated.to_json()}
        waiting: Obj = {"reason": self.waiting_reason}
        if self.waiting_message:
            waiting["message"] = self.waiting_message
        return {"waiting": waiting}

    def to_json(self) -> Obj:
        doc: Obj = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id or f"kevents-agent://{self.image}",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": self.state_json(),
            "lastState": (
                {"terminated": self.last_terminated.to_json()} if self.last_terminated else {}
            ),
        }
        if self.container_id:
            doc["containerID"] = self.container_id
        return doc


@dataclass
class PodRuntime:
    """Everything the status of one pod is computed from."""

    restart_policy: str = "Always"
    init: list[ContainerRuntime] = field(default_factory=list)
    containers: list[ContainerRuntime] = field(default_factory=list)
    pod_ip: str = ""
    host_ip: str = ""
    start_time: datetime.datetime | None = None
    sandbox_ready: bool = False
    initialized: bool = False
    failed_reason: str = ""
    failed_message: str = ""


def phase(rt: PodRuntime) -> str:
    """The kubelet's getPhase for our runtime view."""
    if rt.failed_reason:
        return "Failed"
    if not rt.initialized:
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for c in rt.containers:
        if c.running_since is not None:
            running += 1
        elif c.terminated is not None:
            stopped += 1
            if c.terminated.exit_code == 0:
                succeeded += 1
        elif c.last_terminated is not None:
            stopped += 1
            if c.last_terminated.exit_code == 0:
                succeeded += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if rt.restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if rt.restart_policy == "Never" or all(c.done for c in rt.containers):
            return "Failed"
        return "Running"
    return "Pending"


def _condition(
    previous: Sequence[Obj],
    kind: str,
    ok: bool,
    now: datetime.datetime,
    reason: str = "",
    message: str = "",
) -> Obj:
    status = "True" if ok else "False"
    before = next((c for c in previous if c.get("type") == kind), None)
    changed = before is None or before.get("status") != status
    doc: Obj = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": (
            rfc3339(now) if changed or before is None else before.get("lastTransitionTime")
        ),
    }
    if not ok and reason:
        doc["reason"] = reason
    if not ok and message:
        doc["message"] = message
    return doc


def _unready_message(kind: str, unready: Sequence[ContainerRuntime]) -> str:
    names = " ".join(c.name for c in unready)
    message = f"{kind} with unready status: [{names}]"
    details = [
        f"{c.name}: {c.waiting_reason}: {c.waiting_message}"
        for c in unready
        if c.running_since is None and c.terminated is None and c.waiting_message
    ]
    if details:
        message += " (" + "; ".join(details) + ")"
    return message


def build(pod: Obj, rt: PodRuntime, now: datetime.datetime) -> Obj:
    """The complete `status` to write for `pod` (a merge patch replaces lists whole)."""
    previous = (pod.get("status") or {}).get("conditions") or []
    unready = [c for c in rt.containers if not c.ready]
    # Pods that ran to completion report Ready False with reason PodCompleted, like the kubelet.
    ph = phase(rt)
    completed = ph in ("Succeeded", "Failed")
    pending_init = [c for c in rt.init if not (c.terminated and c.terminated.exit_code == 0)]
    conditions = [
        _condition(previous, "PodReadyToStartContainers", rt.sandbox_ready, now),
        _condition(
            previous,
            "Initialized",
            rt.initialized,
            now,
            "ContainersNotInitialized",
            _unready_message("containers", pending_init).replace("containers", "init containers", 1)
            if pending_init
            else "",
        ),
        _condition(
            previous,
            "Ready",
            not unready and not completed,
            now,
            "PodCompleted" if completed else "ContainersNotReady",
            "" if completed else _unready_message("containers", unready),
        ),
        _condition(
            previous,
            "ContainersReady",
            not unready and not completed,
            now,
            "PodCompleted" if completed else "ContainersNotReady",
            "" if completed else _unready_message("containers", unready),
        ),
        _condition(previous, "PodScheduled", True, now),
    ]
    status: Obj = {
        "phase": ph,
        "conditions": conditions,
        "containerStatuses": [c.to_json() for c in rt.containers],
        "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort"),
    }
    if rt.init:
        status["initContainerStatuses"] = [c.to_json() for c in rt.init]
    if rt.host_ip:
        status["hostIP"] = rt.host_ip
        status["hostIPs"] = [{"ip": rt.host_ip}]
    if rt.pod_ip:
        status["podIP"] = rt.pod_ip
        status["podIPs"] = [{"ip": rt.pod_ip}]
    if rt.start_time is not None:
        status["startTime"] = rfc3339(rt.start_time)
    if rt.failed_reason:
        status["reason"] = rt.failed_reason
        status["message"] = rt.failed_message
    return status
