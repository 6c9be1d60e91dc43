"""The runc runtime: a container runs from its image's root filesystem through `runc run`.

Chosen by `--runtime runc` (`KEVENTS_AGENT_RUNTIME=runc`) for every pod, or by one pod's
annotation `agent.kevents.dev/runtime: runc` (`process` the other way); the default stays the
process runtime of `containers.py`. Per container start:

    <pod dir>/runc/<container>/config.json   the OCI runtime spec built by `spec()` below
    root: the image's rootfs read-only (readOnlyRootFilesystem) or an overlay on it
          (upper layer per run, dropped when the container exits, as a new container's)
    runc --root <state>/runc run --bundle <dir> <id>   in the foreground: its exit status is
          the container's, its stdout/stderr the container log, SIGTERM reaches the
          container's init through runc; SIGKILL and the final clean-up go through
          `runc kill` / `runc delete --force`, since the container runs in its own session.

The pod's network namespace, volumes, resolv.conf/hosts/hostname, env, command/args,
workingDir, runAsUser/runAsGroup/supplementalGroups/fsGroup, runAsNonRoot,
readOnlyRootFilesystem, capabilities (the runtime default set, drop/add),
allowPrivilegeEscalation (no_new_privileges), privileged, and memory/CPU/pids limits map to
the spec as containerd's CRI plugin maps them. Not done: seccomp and AppArmor profiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import pathlib
import re
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hack.agent import containers, envvars, errors, imagestore, quantities

log = logging.getLogger(__name__)

Obj = dict[str, Any]
ANNOTATION = "agent.kevents.dev/runtime"

DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)  # fmt: skip
"""containerd's default capability set for a container."""

ALL_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
)  # fmt: skip

MASKED = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware",
)  # fmt: skip
NOFILE = min(1_048_576, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
"""containerd's open-file limit, or the agent's own hard limit where that is lower."""

READONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def wanted(pod: Obj, default: str) -> bool:
    """Does this pod run through runc? Its annotation, else the agent's default runtime."""
    annotations = pod["metadata"].get("annotations") or {}
    return str(annotations.get(ANNOTATION, default)) == "runc"


def _cap(name: str) -> str:
    name = name.upper()
    return name if name.startswith("CAP_") else f"CAP_{name}"


def capabilities(sc: Obj) -> list[str]:
    """The container's capability set: the default, minus `drop`, plus `add`."""
    if sc.get("privileged"):
        return list(ALL_CAPS)
    caps = sc.get("capabilities") or {}
    drop = {_cap(c) for c in caps.get("drop") or ()}
    result = [] if "CAP_ALL" in drop else [c for c in DEFAULT_CAPS if c not in drop]
    for c in caps.get("add") or ():
        c = _cap(c)
        result = list(ALL_CAPS) if c == "CAP_ALL" else result + ([c] if c not in result else [])
    return result


def lookup_user(rootfs: pathlib.Path, user: str) -> tuple[int, int]:
    """An image's `User` ("65532:65532", "nonroot", "1000", "") as uid/gid, read from the
    image's /etc/passwd and /etc/group where names are given."""
    name, _, group = user.partition(":")

    def table(path: str) -> dict[str, list[str]]:
        with contextlib.suppress(OSError):
            rows = (rootfs / path).read_text().splitlines()
            return {r.split(":")[0]: r.split(":") for r in rows if r.count(":") >= 2}
        return {}

    uid, gid = 0, 0
    if name:
        if name.isdigit():
            uid = int(name)
            row = next((r for r in table("etc/passwd").values() if r[2] == name), None)
            gid = int(row[3]) if row and len(row) > 3 and row[3].isdigit() else 0
        else:
            row = table("etc/passwd").get(name)
            if row is None:
                raise errors.ContainerConfigError(
                    f"unable to find user {name}: no matching entries in passwd file"
                )
            uid, gid = int(row[2]), int(row[3])
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            grow = table("etc/group").get(group)
            if grow is None:
                raise errors.ContainerConfigError(f"unable to find group {group}")
            gid = int(grow[2])
    return uid, gid


def argv(
    image: Mapping[str, Any], command: Sequence[str] | None, args: Sequence[str] | None
) -> list[str]:
    """Kubernetes' rule: `command` replaces ENTRYPOINT (and drops CMD), `args` replaces CMD."""
    entrypoint = list(image.get("Entrypoint") or [])
    cmd = list(image.get("Cmd") or [])
    if command:
        result = [*command, *(args or ())]
    elif args:
        result = [*entrypoint, *args]
    else:
        result = [*entrypoint, *cmd]
    if not result:
        raise errors.ContainerConfigError("no command specified")
    return result


def resources(container: Obj) -> Obj:
    limits = (container.get("resources") or {}).get("limits") or {}
    res: Obj = {"devices": [{"allow": False, "access": "rwm"}]}
    if "memory" in limits:
        res["memory"] = {"limit": int(quantities.parse(str(limits["memory"])))}
    if "cpu" in limits:
        period = 100_000
        res["cpu"] = {
            "period": period,
            "quota": max(1000, int(quantities.parse(str(limits["cpu"])) * period)),
        }
    return res


@dataclass(frozen=True)
class Inputs:
    """Everything `spec()` reads, gathered by `Runtime.launch`."""

    pod: Obj
    container: Obj
    image: imagestore.Resolved
    rootfs: pathlib.Path
    env: Mapping[str, str]
    """The container's own env (valueFrom, envFrom, service links), expanded."""
    mounts: Sequence[containers.Mount]
    hostname: str
    netns_path: str
    cgroup: str


def spec(i: Inputs) -> tuple[Obj, bool]:
    """(OCI runtime spec, read-only root) for one container."""
    pod_sc = i.pod["spec"].get("securityContext") or {}
    sc = i.container.get("securityContext") or {}
    config = i.image.config
    uid, gid = lookup_user(i.rootfs, str(config.get("User") or ""))
    run_as_user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if run_as_user is not None:
        uid = int(run_as_user)
    run_as_group = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    if run_as_group is not None:
        gid = int(run_as_group)
    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) and uid == 0:
        raise errors.ContainerConfigError("container has runAsNonRoot and image will run as root")
    groups = [int(g) for g in pod_sc.get("supplementalGroups") or ()]
    if pod_sc.get("fsGroup") is not None:
        groups.append(int(pod_sc["fsGroup"]))
    read_only = bool(sc.get("readOnlyRootFilesystem"))
    env: dict[str, str] = {}
    for item in config.get("Env") or ():
        k, _, v = str(item).partition("=")
        env[k] = v
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env["HOSTNAME"] = i.hostname
    env.update(i.env)
    # $(VAR) refers to the container's own env only, as in the kubelet.
    args = [
        envvars.expand(a, dict(i.env))
        for a in argv(config, i.container.get("command"), i.container.get("args"))
    ]
    caps = capabilities(sc)
    no_new_privs = sc.get("allowPrivilegeEscalation") is False
    privileged = bool(sc.get("privileged"))
    mounts: list[Obj] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]  # fmt: skip
    for m in sorted(i.mounts, key=lambda m: m.target.count("/")):
        options = ["rbind", "rprivate"] + (["ro"] if m.read_only else [])
        mounts.append(
            {"destination": m.target, "type": "bind", "source": str(m.source), "options": options}
        )
    namespaces: list[Obj] = [{"type": "pid"}, {"type": "ipc"}, {"type": "mount"}]
    if i.hostname:
        namespaces.append({"type": "uts"})
    if i.netns_path:
        namespaces.append({"type": "network", "path": i.netns_path})
    process: Obj = {
        "terminal": False,
        "user": {"uid": uid, "gid": gid, "additionalGids": groups},
        "args": args,
        "env": [f"{k}={v}" for k, v in env.items()],
        "cwd": str(i.container.get("workingDir") or config.get("WorkingDir") or "/"),
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": NOFILE, "soft": NOFILE}],
        "noNewPrivileges": no_new_privs,
    }
    if uid == 0:
        process["capabilities"]["inheritable"] = []
    doc: Obj = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": str(i.rootfs), "readonly": read_only},
        "hostname": i.hostname or None,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": i.cgroup,
            "resources": resources(i.container),
            "maskedPaths": [] if privileged else list(MASKED),
            "readonlyPaths": [] if privileged else list(READONLY),
        },
    }
    if not i.hostname:
        del doc["hostname"]
    return doc, read_only


class Container:
    """One run of a container under runc (the `containers.Runtime` of its Launch)."""

    def __init__(self, runc_root: pathlib.Path, bundle: pathlib.Path, cid: str, doc: Obj,
                 lower: pathlib.Path, read_only: bool,
                 release: Callable[[], None] = lambda: None) -> None:  # fmt: skip
        self.release = release
        """Called once the container is gone: its image's rootfs may be pruned."""
        self.runc_root = runc_root
        self.bundle = bundle
        self.id = cid
        self.doc = doc
        self.lower = lower
        self.read_only = read_only
        self.merged: pathlib.Path | None = None

    def _runc(self, *args: str) -> list[str]:
        return ["runc", "--root", str(self.runc_root), *args]

    async def _run(self, *args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *self._runc(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode(errors="replace")

    async def prepare(self) -> list[str]:
        """Write the bundle (mount the overlay for a writable root); the argv to run."""
        await self._run("delete", "--force", self.id)
        if (self.bundle / "merged").is_mount():  # left by an agent that died
            await _umount(self.bundle / "merged")
        shutil.rmtree(self.bundle, ignore_errors=True)
        self.bundle.mkdir(parents=True)
        root = self.lower
        if not self.read_only:
            for d in ("upper", "work", "merged"):
                (self.bundle / d).mkdir()
            merged = self.bundle / "merged"
            b = self.bundle
            options = f"lowerdir={self.lower},upperdir={b / 'upper'},workdir={b / 'work'}"
            proc = await asyncio.create_subprocess_exec(
                "mount", "-t", "overlay", "overlay", "-o", options, str(merged),
                stderr=subprocess.PIPE,
            )  # fmt: skip
            _, err = await proc.communicate()
            if proc.returncode != 0:
                raise errors.ContainerConfigError(
                    f"overlay root filesystem: {err.decode().strip()}"
                )
            self.merged = root = merged
        doc = {**self.doc, "root": {**self.doc["root"], "path": str(root)}}
        (self.bundle / "config.json").write_text(json.dumps(doc, indent=1))
        return self._runc("run", "--bundle", str(self.bundle), self.id)

    async def signal(self, sig: int) -> None:
        """Signal the container's init (SIGKILL cannot pass through runc's signal proxy)."""
        await self._run("kill", self.id, signal.Signals(sig).name.removeprefix("SIG"))

    async def init_pid(self) -> int | None:
        code, out = await self._run("state", self.id)
        if code != 0:
            return None
        with contextlib.suppress(ValueError, KeyError):
            pid = int(json.loads(out)["pid"])
            return pid or None
        return None

    async def cleanup(self) -> None:
        """Remove the container (killing anything left in it) and its writable layer."""
        await self._run("delete", "--force", self.id)
        if self.merged is not None:
            await _umount(self.merged)
            self.merged = None
        shutil.rmtree(self.bundle, ignore_errors=True)
        release, self.release = self.release, lambda: None
        release()


async def _umount(path: pathlib.Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        "umount", "-l", str(path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    await proc.wait()


_ID_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class Runtime:
    """The node's runc runtime: image store, runc state folder, default runtime choice."""

    def __init__(self, store: imagestore.ImageStore, state: pathlib.Path, default: str) -> None:
        self.store = store
        self.runc_root = state / "runc"
        self.default = default

    def wanted(self, pod: Obj) -> bool:
        return wanted(pod, self.default)

    async def launch(
        self, *, pod: Obj, pod_dir: pathlib.Path, spec_: Obj, env: Mapping[str, str],
        mounts: Sequence[containers.Mount], hostname: str, netns_path: str,
    ) -> containers.Launch:  # fmt: skip
        if shutil.which("runc") is None:
            raise errors.ContainerConfigError("no runc here: hack/build-images installs it")
        image = self.store.resolve(str(spec_.get("image", "")))
        rootfs = await self.store.acquire(image)
        uid = str(pod["metadata"]["uid"])
        name = str(spec_["name"])
        cid = _ID_SAFE.sub("-", f"kev-{uid[:13]}-{name}")
        try:
            doc, read_only = spec(
                Inputs(
                    pod=pod, container=spec_, image=image, rootfs=rootfs, env=env,
                    mounts=mounts, hostname=hostname, netns_path=netns_path,
                    cgroup=f"/kevents/{cid}",
                )
            )  # fmt: skip
            self.runc_root.mkdir(parents=True, exist_ok=True)
            container = Container(
                self.runc_root, pod_dir / "runc" / name, cid, doc, rootfs, read_only,
                release=lambda: self.store.release(image),
            )  # fmt: skip
            argv = await container.prepare()
        except BaseException:
            self.store.release(image)
            raise
        return containers.Launch(
            argv=argv,
            env=dict(env),
            workdir=doc["process"]["cwd"],
            mounts=list(mounts),
            hostname=hostname,
            netns_path=netns_path,
            runtime=container,
            image_id=image.image_id,
        )


def cleanup(state: pathlib.Path) -> list[str]:
    """Delete the containers a gone agent left under `<state>/runc` (and their overlays)."""
    root = state / "runc"
    if not root.exists() or shutil.which("runc") is None:
        return []
    out = subprocess.run(
        ["runc", "--root", str(root), "list", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for cid in out:
        subprocess.run(
            ["runc", "--root", str(root), "delete", "--force", cid],
            capture_output=True,
            check=False,
        )
    for merged in state.glob("pods/*/runc/*/merged"):
        subprocess.run(["umount", "-l", str(merged)], capture_output=True, check=False)
    return [f"runc container {cid}" for cid in out]
