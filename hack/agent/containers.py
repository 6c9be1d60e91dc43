"""One container: its process, restarts with back-off, probes and graceful stop.

A container runs as a process in its own session (so a signal reaches its whole process
group), inside the pod's network namespace and a private mount + UTS namespace where the
pod's volumes, resolv.conf and hosts file are bind-mounted at their paths:

    nsenter --net=/run/netns/kev-<id> -- unshare --mount --uts --propagation private -- \
        /bin/sh <launch script: hostname, mount --bind ..., cd, exec argv>

Every step `exec`s the next, so the recorded pid is the container's own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import pathlib
import shlex
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Any, Protocol

from hack.agent import errors, podstatus, probes

log = logging.getLogger(__name__)

Obj = dict[str, Any]


STAGE = "/run/kevents-stage"
"""Where the launch script first binds every mount source, in a tmpfs private to the container.

A target can hide a later mount's source (an emptyDir at /work hides volumes kept under
/work/main/.state), so all sources are bound here before any target is mounted."""


PROJECT = str(pathlib.Path(__file__).resolve().parents[2])
"""The checkout whose code and virtualenv every container runs. A volume mounted over one of
its parents (an emptyDir at /tmp while the checkout is /tmp/ci/...) would hide them, so the
launch script binds the checkout back on top of such a volume."""


def _covers(target: str, path: str) -> bool:
    return path == target or path.startswith(target.rstrip("/") + "/")


@dataclass(frozen=True)
class Mount:
    source: pathlib.Path
    target: str
    read_only: bool = False
    is_file: bool = False


class Runtime(Protocol):
    """Another way to run a container than the launch script: `runc.Container`."""

    async def init_pid(self) -> int | None: ...
    async def cleanup(self) -> None: ...


@dataclass(frozen=True)
class Launch:
    """Everything needed to start one container process."""

    argv: list[str]
    env: dict[str, str]
    workdir: str = "/"
    mounts: list[Mount] = field(default_factory=list)
    hostname: str = ""
    netns_path: str = ""
    runtime: Runtime | None = None
    """Set: `argv` starts the container as is (runc) and `runtime.cleanup()` follows its exit."""
    image_id: str = ""


class Pod(Protocol):
    """What a container needs from the worker of its pod."""

    stopping: asyncio.Event
    grace: float
    host_ip: str
    pod_ip: str
    name: str

    @property
    def formatted(self) -> str: ...

    async def launch(self, spec: Obj) -> Launch: ...
    def changed(self) -> None: ...
    def event(
        self, container: str, *, init: bool, type_: str, reason: str, message: str
    ) -> None: ...
    def log_dir(self, container: str) -> pathlib.Path: ...
    def record_pid(self, container: str, pid: int | None) -> None: ...


@dataclass(frozen=True)
class Backoff:
    """Restart delays: the first restart is immediate, then base * 2^n up to `cap` seconds."""

    base: float = 10.0
    cap: float = 300.0
    reset_after: float = 600.0
    """A container that ran this long without crashing starts over at an immediate restart."""

    def delay(self, crashes: int) -> float:
        if crashes <= 1:
            return 0.0
        return float(min(self.cap, self.base * 2 ** (crashes - 2)))


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def launch_script(launch: Launch) -> str:
    """The shell script that sets up the mount namespace, then execs the container."""
    q = shlex.quote
    lines = ["#!/bin/sh", "set -e"]
    if launch.hostname:
        lines.append(f"hostname {q(launch.hostname)}")
    if launch.mounts:
        lines += [f"mkdir -p {STAGE}", f"mount -t tmpfs kevents-stage {STAGE}"]
    for i, m in enumerate(launch.mounts):
        lines.append(f"{'touch' if m.is_file else 'mkdir'} {STAGE}/{i}")
        lines.append(f"mount --bind {q(str(m.source))} {STAGE}/{i}")
    keep_project = any(_covers(m.target, PROJECT) for m in launch.mounts)
    if keep_project:
        lines += [f"mkdir {STAGE}/project", f"mount --bind {q(PROJECT)} {STAGE}/project"]
    # Parents before children, as container runtimes mount them.
    order = sorted(range(len(launch.mounts)), key=lambda i: launch.mounts[i].target.count("/"))
    for i in order:
        m = launch.mounts[i]
        lines.append(f"mount --bind {STAGE}/{i} {q(m.target)}")
        if m.read_only:
            lines.append(f"mount -o remount,bind,ro {q(m.target)}")
    if keep_project:
        lines += [f"mkdir -p {q(PROJECT)}", f"mount --bind {STAGE}/project {q(PROJECT)}"]
    lines.append(f"cd {q(launch.workdir)}")
    lines.append("exec " + " ".join(q(a) for a in launch.argv))
    return "\n".join(lines) + "\n"


def wrapper_argv(launch: Launch, script: pathlib.Path) -> list[str]:
    """The command line that enters the pod's namespaces and runs `script`."""
    unshare = ["unshare", "--mount", "--propagation", "private"]
    if launch.hostname:
        unshare.append("--uts")
    argv = [*unshare, "--", "/bin/sh", str(script)]
    if launch.netns_path:
        argv = ["nsenter", f"--net={launch.netns_path}", "--", *argv]
    return argv


def exit_code(returncode: int) -> tuple[int, int | None]:
    """asyncio's returncode -> (container exit code, signal); a signal N gives 128+N."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


class Container:
    """Runs one container of a pod until it is done for good or the pod stops."""

    def __init__(
        self, pod: Pod, spec: Obj, *, init: bool, restart_policy: str, backoff: Backoff
    ) -> None:
        self.pod = pod
        self.spec = spec
        self.init = init
        self.restart_policy = restart_policy
        self.backoff = backoff
        self.rt = podstatus.ContainerRuntime(name=spec["name"], image=spec.get("image", ""))
        self.pid: int | None = None
        self.env: dict[str, str] = {}
        self.runtime: Runtime | None = None

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.pod.event(self.name, init=self.init, type_=type_, reason=reason, message=message)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, returning early when the pod stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.pod.stopping.wait(), seconds)

    async def run(self) -> bool:
        """Run until done; True when the (last) run exited 0."""
        crashes = 0
        config_failures = 0
        while not self.pod.stopping.is_set():
            try:
                launch = await self.pod.launch(self.spec)
            except errors.ContainerConfigError as err:
                config_failures += 1
                image = self.spec.get("image", "")
                if isinstance(err, errors.UnknownImage):
                    self._event("Warning", "Failed", f'Failed to pull image "{image}": {err}')
                else:
                    self._pulled()
                    self._event("Warning", "Failed", f"Error: {err}")
                reason = err.reason
                if isinstance(err, errors.UnknownImage) and config_failures > 1:
                    reason = "ImagePullBackOff"
                self.rt.waiting_reason, self.rt.waiting_message = reason, str(err)
                self.pod.changed()
                log.warning(
                    "Container %s of pod %s can't start: %s",
                    self.name,
                    self.pod.name,
                    err,
                    extra={"pod": self.pod.name, "container": self.name},
                )
                await self._sleep(min(self.backoff.cap, 2.0 * 2 ** min(config_failures, 6)))
                continue
            config_failures = 0
            self._pulled()
            self.env = launch.env
            started = now()
            term = await self._run_process(launch)
            if self.pod.stopping.is_set():
                return term.exit_code == 0
            ran_for = (term.finished_at - started).total_seconds()
            crashes = 1 if ran_for >= self.backoff.reset_after else crashes + 1
            if self.init:
                restart = term.exit_code != 0 and self.restart_policy != "Never"
            elif self.restart_policy == "Always":
                restart = True
            elif self.restart_policy == "OnFailure":
                restart = term.exit_code != 0
            else:
                restart = False
            if not restart:
                self.rt.done = True
                self.pod.changed()
                return term.exit_code == 0
            delay = self.backoff.delay(crashes)
            if delay > 0:
                self._event(
                    "Warning", "BackOff",
                    f"Back-off restarting failed container {self.name} in pod {self.pod.formatted}",
                )  # fmt: skip
                self.rt.last_terminated, self.rt.terminated = term, None
                self.rt.waiting_reason = "CrashLoopBackOff"
                self.rt.waiting_message = (
                    f"back-off {delay:g}s restarting failed container={self.name} "
                    f"pod={self.pod.name}"
                )
                self.pod.changed()
                await self._sleep(delay)
            if self.pod.stopping.is_set():
                break
            self.rt.restart_count += 1
        return False

    async def _run_process(self, launch: Launch) -> podstatus.Terminated:
        logs = self.pod.log_dir(self.name)
        logs.mkdir(parents=True, exist_ok=True)
        current = logs / "current.log"
        if current.exists():
            current.replace(logs / "previous.log")
        if launch.runtime is not None:
            argv = launch.argv
        else:
            script = logs / "launch.sh"
            script.write_text(launch_script(launch))
            argv = wrapper_argv(launch, script)
        self.runtime = launch.runtime
        self.rt.image_id = launch.image_id
        with current.open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=launch.env,
                start_new_session=True,
            )
        started = now()
        self.pid = proc.pid
        self.pod.record_pid(self.name, proc.pid)
        cid = f"kevents://{self.pod.name}-{self.name}-{proc.pid}"
        if self.rt.running_since is None and self.rt.terminated is not None:
            self.rt.last_terminated = self.rt.terminated
        self.rt.terminated = None
        self.rt.running_since = started
        self.rt.container_id = cid
        self.rt.started = "startupProbe" not in self.spec
        self.rt.ready = not self.init and "readinessProbe" not in self.spec
        self.pod.changed()
        self._event("Normal", "Created", "Container created")
        self._event("Normal", "Started", "Container started")
        log.info(
            "Started container %s of pod %s (pid %d).",
            self.name,
            self.pod.name,
            proc.pid,
            extra={"pod": self.pod.name, "container": self.name},
        )
        reason = ""
        try:
            async with asyncio.TaskGroup() as tg:
                stopper = tg.create_task(self._stop_when_pod_stops(proc))
                prober = tg.create_task(self._probe(proc)) if not self.init else None
                returncode = await proc.wait()
                stopper.cancel()
                if prober is not None:
                    if prober.done() and not prober.cancelled():
                        reason = prober.result()
                    prober.cancel()
        except BaseException:
            # Cancelled (the agent stops without a graceful pod stop): leave no process.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if launch.runtime is not None:
                await asyncio.shield(launch.runtime.cleanup())
            raise
        # The container's process group goes with it, as a container's cgroup would.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if launch.runtime is not None:
            # runc's container runs in a session of its own: remove it with what it left.
            await asyncio.shield(launch.runtime.cleanup())
        self.pid = None
        self.pod.record_pid(self.name, None)
        code, sig = exit_code(returncode)
        term = podstatus.Terminated(
            exit_code=code,
            reason="Completed" if code == 0 else "Error",
            started_at=started,
            finished_at=now(),
            signal=sig,
            message=reason,
            container_id=cid,
        )
        self.rt.running_since = None
        self.rt.terminated = term
        self.rt.ready = False
        self.pod.changed()
        log.info(
            "Container %s of pod %s exited with %d.",
            self.name,
            self.pod.name,
            code,
            extra={"pod": self.pod.name, "container": self.name},
        )
        return term

    def _pulled(self) -> None:
        image = self.spec.get("image", "")
        self._event(
            "Normal", "Pulled",
            f'Container image "{image}" already present on machine and can be accessed by the pod',
        )  # fmt: skip

    async def _stop_when_pod_stops(self, proc: asyncio.subprocess.Process) -> None:
        await self.pod.stopping.wait()
        self._event("Normal", "Killing", f"Stopping container {self.name}")
        await self.kill(proc, self.pod.grace)

    async def kill(self, proc: asyncio.subprocess.Process, grace: float) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), max(grace, 0.1))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    async def _probe(self, proc: asyncio.subprocess.Process) -> str:
        """Startup, then readiness and liveness probes; returns why it killed the process."""
        startup = self.spec.get("startupProbe")
        if startup and not await self._until(startup, proc, want=True, kind="Startup"):
            self._event(
                "Normal", "Killing",
                f"Container {self.name} failed startup probe, will be restarted",
            )  # fmt: skip
            await self.kill(proc, self._grace())
            return "Container failed startup probe, will be restarted"
        if not self.rt.started:
            self.rt.started = True
            self.pod.changed()
        async with asyncio.TaskGroup() as tg:
            readiness = self.spec.get("readinessProbe")
            if readiness:
                tg.create_task(self._readiness(readiness, proc))
            liveness = self.spec.get("livenessProbe")
            if liveness and not await self._until(liveness, proc, want=False, kind="Liveness"):
                self._event(
                    "Normal", "Killing",
                    f"Container {self.name} failed liveness probe, will be restarted",
                )  # fmt: skip
                await self.kill(proc, self._grace())
                return "Container failed liveness probe, will be restarted"
        return ""

    def _grace(self) -> float:
        return float(self.pod.grace)

    async def _once(self, probe: Obj) -> probes.Result:
        pid = self.pid
        if self.runtime is not None and "exec" in probe:
            pid = await self.runtime.init_pid()  # exec probes enter the container's init
        return await probes.check(
            probe, host=self.pod.pod_ip or "127.0.0.1", container=self.spec, pid=pid,
            env=self.env,
        )  # fmt: skip

    async def _until(
        self, probe: Obj, proc: asyncio.subprocess.Process, *, want: bool, kind: str
    ) -> bool:
        """Probe every period until the probe passed (want=True: startup) or the process
        ended; False when it failed failureThreshold times in a row (a liveness failure too:
        the caller restarts the container)."""
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        period = float(probe.get("periodSeconds", 10))
        threshold = int(probe.get("failureThreshold", 3))
        failures = 0
        while proc.returncode is None:
            result = await self._once(probe)
            if result.ok:
                failures = 0
                if want:
                    return True
            else:
                failures += 1
                self._event("Warning", "Unhealthy", f"{kind} probe failed: {result.message}")
                if failures >= threshold:
                    log.info(
                        "Probe of container %s in pod %s failed: %s",
                        self.name,
                        self.pod.name,
                        result.message,
                    )
                    return False
            await asyncio.sleep(period)
        return not want

    async def _readiness(self, probe: Obj, proc: asyncio.subprocess.Process) -> None:
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        period = float(probe.get("periodSeconds", 10))
        success_needed = int(probe.get("successThreshold", 1))
        failure_needed = int(probe.get("failureThreshold", 3))
        successes = failures = 0
        while proc.returncode is None:
            result = await self._once(probe)
            if result.ok:
                successes, failures = successes + 1, 0
                if successes >= success_needed and not self.rt.ready:
                    self.rt.ready = True
                    self.pod.changed()
            else:
                successes, failures = 0, failures + 1
                self._event("Warning", "Unhealthy", f"Readiness probe failed: {result.message}")
                if failures >= failure_needed and self.rt.ready:
                    self.rt.ready = False
                    self.pod.changed()
            # Until the first success, probe quickly so a starting pod turns Ready soon.
            await asyncio.sleep(period if self.rt.ready else min(period, 1.0))
