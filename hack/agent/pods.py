"""Pods bound to this node: one worker per pod, started and stopped from a pod watch.

A worker owns one pod's lifecycle: network namespace, volumes, init containers in order,
then every container at once; it reports status (debounced merge patches of pods/status),
and on deletion stops the containers within the grace period and removes the pod with
gracePeriodSeconds=0, the final step the kubelet performs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from hack import processes
from hack.agent import (
    containers,
    envvars,
    errors,
    images,
    mountpoints,
    network,
    podstatus,
    runc,
    volumes,
)
from kevents import informer, kubeapi, kubeevents

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
PODS = kubeapi.Resource("", "v1", "pods")
SERVICES = kubeapi.Resource("", "v1", "services")
CONFIGMAPS = kubeapi.Resource("", "v1", "configmaps")
SECRETS = kubeapi.Resource("", "v1", "secrets")


@dataclass
class NodeContext:
    """What every pod worker shares: the node's identity, network and settings."""

    client: kubeapi.KubeApi
    node_name: str
    host_ip: str
    state: pathlib.Path
    network: network.Network | None
    images: images.ImageMap
    allocatable: dict[str, str]
    cluster_dns: str
    cluster_domain: str
    backoff: containers.Backoff
    path_env: str
    mounts: mountpoints.MountPoints = field(default_factory=mountpoints.MountPoints)
    runc: runc.Runtime | None = None
    """Runs the pods that want it (`runc.wanted`) from real images; None: none do."""
    events: kubeevents.Emitter = field(
        default_factory=lambda: kubeevents.Emitter(None, kubeevents.Source("kubelet"))
    )
    """The kubelet's Events (source `kubelet`, host the node) through the shared recorder."""

    def log_root(self) -> pathlib.Path:
        return self.state / "logs"


def resolv_conf(pod: Obj, cluster_dns: str, domain: str, host_resolv: str) -> str:
    """The pod's /etc/resolv.conf for its dnsPolicy and dnsConfig."""
    spec = pod["spec"]
    ns = pod["metadata"]["namespace"]
    policy = spec.get("dnsPolicy", "ClusterFirst")
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        nameservers = [cluster_dns]
        searches = [f"{ns}.svc.{domain}", f"svc.{domain}", domain]
        options = ["ndots:5"]
    elif policy == "Default":
        for line in host_resolv.splitlines():
            parts = line.split()
            if parts and parts[0] == "nameserver":
                nameservers += parts[1:2]
            elif parts and parts[0] == "search":
                searches += parts[1:]
            elif parts and parts[0] == "options":
                options += parts[1:]
    extra = spec.get("dnsConfig") or {}
    nameservers += [n for n in extra.get("nameservers") or () if n not in nameservers]
    searches += [s for s in extra.get("searches") or () if s not in searches]
    for opt in extra.get("options") or ():
        text = opt["name"] + (f":{opt['value']}" if opt.get("value") else "")
        options = [o for o in options if o.split(":")[0] != opt["name"]] + [text]
    lines = [f"nameserver {n}" for n in nameservers[:3]]
    if searches:
        lines.append("search " + " ".join(searches))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def hosts_file(pod: Obj, pod_ip: str, hostname: str) -> str:
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    if pod_ip:
        lines.append(f"{pod_ip}\t{hostname}")
    for alias in pod["spec"].get("hostAliases") or ():
        lines.append(f"{alias['ip']}\t" + "\t".join(alias.get("hostnames") or ()))
    return "\n".join(lines) + "\n"


class PodWorker:
    """Runs one pod bound to this node from creation to deletion."""

    def __init__(self, node: NodeContext, pod: Obj) -> None:
        self.node = node
        self.pod = pod
        meta = pod["metadata"]
        self.uid = str(meta["uid"])
        self.namespace = str(meta["namespace"])
        self.name = f"{self.namespace}/{meta['name']}"
        self.stopping = asyncio.Event()
        self.deleting = False
        self.grace = float(pod["spec"].get("terminationGracePeriodSeconds", 30))
        self.host_ip = node.host_ip
        self.pod_ip = ""
        self.dir = node.state / "pods" / self.uid
        spec = pod["spec"]
        self.restart_policy = str(spec.get("restartPolicy", "Always"))
        self.rt = podstatus.PodRuntime(restart_policy=self.restart_policy, host_ip=node.host_ip)
        self.init = [
            containers.Container(
                self, c, init=True, restart_policy=self.restart_policy, backoff=node.backoff
            )
            for c in spec.get("initContainers") or ()
        ]
        self.main = [
            containers.Container(
                self, c, init=False, restart_policy=self.restart_policy, backoff=node.backoff
            )
            for c in spec.get("containers") or ()
        ]
        self.rt.init = [c.rt for c in self.init]
        self.rt.containers = [c.rt for c in self.main]
        self._changed = asyncio.Event()
        self._net: network.PodNetwork | None = None
        self._volumes: volumes.Volumes | None = None
        self._acquired: list[pathlib.Path] = []
        self._restore_restart_counts()

    def _restore_restart_counts(self) -> None:
        """After an agent restart, carry on counting restarts from the reported status."""
        status = self.pod.get("status") or {}
        for key, group in (("initContainerStatuses", self.init), ("containerStatuses", self.main)):
            known = {s["name"]: s for s in status.get(key) or ()}
            for c in group:
                if c.name in known and known[c.name].get("state", {}).get("running"):
                    c.rt.restart_count = int(known[c.name].get("restartCount", 0)) + 1
                elif c.name in known:
                    c.rt.restart_count = int(known[c.name].get("restartCount", 0))

    # -- what containers use -------------------------------------------------------------

    def changed(self) -> None:
        self._changed.set()

    @property
    def formatted(self) -> str:
        """The pod as the kubelet names it in messages (`format.Pod`): name_namespace(uid)."""
        meta = self.pod["metadata"]
        return f"{meta['name']}_{meta['namespace']}({self.uid})"

    def event(self, container: str, *, init: bool, type_: str, reason: str, message: str) -> None:
        """An Event about one of the pod's containers, as the kubelet records it: the pod
        with the container's `fieldPath` (`spec.containers{NAME}`)."""
        group = "initContainers" if init else "containers"
        pod = {**self.pod, "apiVersion": "v1", "kind": "Pod"}
        ref = kubeevents.reference(pod, f"spec.{group}{{{container}}}")
        self.node.events.event(ref, type_, reason, message)

    def log_dir(self, container: str) -> pathlib.Path:
        meta = self.pod["metadata"]
        return self.node.log_root() / f"{meta['namespace']}_{meta['name']}_{self.uid}" / container

    def record_pid(self, container: str, pid: int | None) -> None:
        path = self.dir / "pids" / container
        if pid is None:
            path.unlink(missing_ok=True)
            return
        ticks = processes.start_ticks(pid)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{pid} {ticks}\n")

    def _pod_view(self) -> Obj:
        """The pod as the downward API sees it: with our IPs in its status."""
        view = dict(self.pod)
        status = dict(view.get("status") or {})
        status["hostIP"] = self.host_ip
        status["hostIPs"] = [{"ip": self.host_ip}]
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        view["status"] = status
        return view

    async def _service_env(self) -> dict[str, str]:
        client = self.node.client
        services: list[Obj] = []
        master = await client.get_or_none(SERVICES, "default", "kubernetes")
        if master is not None:
            services.append(master)
        enable = self.pod["spec"].get("enableServiceLinks", True) is not False
        if enable and self.namespace != "default":
            listed = await client.request("GET", SERVICES.path(self.namespace))
            services += listed.get("items") or []
        for svc in services:
            svc.setdefault("metadata", {}).setdefault(
                "namespace", svc.get("metadata", {}).get("namespace", self.namespace)
            )
        return envvars.service_links(services, enable_links=enable, namespace=self.namespace)

    async def launch(self, spec: Obj) -> containers.Launch:
        """Resolve image, env, command and mounts of one container (may raise config errors)."""
        oci = self.node.runc if self.node.runc and self.node.runc.wanted(self.pod) else None
        image = images.Image(()) if oci else self.node.images.lookup(str(spec.get("image", "")))
        cm_names, secret_names = envvars.references(spec)
        client = self.node.client
        ns = self.namespace
        cms = {n: await client.get_or_none(CONFIGMAPS, ns, n) for n in cm_names}
        secrets = {n: await client.get_or_none(SECRETS, ns, n) for n in secret_names}
        sources = envvars.Sources(self._pod_view(), cms, secrets, self.node.allocatable)
        env = envvars.build(spec, sources, await self._service_env())
        hostname = str(self.pod["spec"].get("hostname") or self.pod["metadata"]["name"])[:63]
        if oci is not None:
            return await oci.launch(
                pod=self.pod, pod_dir=self.dir, spec_=spec,
                env={k: v for k, v in env.items() if "=" not in k}, mounts=self._mounts(spec),
                hostname="" if self.pod["spec"].get("hostNetwork") else hostname,
                netns_path=self._net.netns_path if self._net else "",
            )  # fmt: skip
        argv = [
            envvars.expand(a, env)
            for a in images.argv(image, spec.get("command"), spec.get("args"))
        ]
        full_env = {
            "PATH": self.node.path_env,
            "HOME": "/root",
            "HOSTNAME": hostname,
            **image.env,
            **{k: v for k, v in env.items() if "=" not in k},
        }
        mounts = self._mounts(spec)
        host_network = bool(self.pod["spec"].get("hostNetwork"))
        return containers.Launch(
            argv=argv,
            env=full_env,
            workdir=str(spec.get("workingDir") or "/"),
            mounts=mounts,
            hostname="" if host_network else hostname,
            netns_path=self._net.netns_path if self._net else "",
        )

    def _mounts(self, spec: Obj) -> list[containers.Mount]:
        assert self._volumes is not None
        mounts: list[containers.Mount] = []
        for vm in spec.get("volumeMounts") or ():
            source = self._volumes.path(vm["name"])
            if vm.get("subPath"):
                source = source / vm["subPath"]
                if not source.exists():
                    source.mkdir(parents=True)
            target = pathlib.Path(vm["mountPath"])
            self._acquire(target, is_file=source.is_file())
            mounts.append(
                containers.Mount(
                    source, str(target), bool(vm.get("readOnly")), is_file=source.is_file()
                )
            )
        etc = self.dir / "etc"
        for name in ("resolv.conf", "hosts", "hostname"):
            if (etc / name).exists() and not any(m.target == f"/etc/{name}" for m in mounts):
                mounts.append(containers.Mount(etc / name, f"/etc/{name}", is_file=True))
        return mounts

    def _acquire(self, target: pathlib.Path, *, is_file: bool) -> None:
        if target in self._acquired:
            return
        self.node.mounts.acquire(target, is_file=is_file)
        self._acquired.append(target)

    # -- lifecycle ------------------------------------------------------------------------

    def update(self, pod: Obj) -> None:
        """A newer version of the pod from the watch."""
        self.pod = pod
        meta = pod["metadata"]
        if meta.get("deletionTimestamp") and not self.stopping.is_set():
            grace = meta.get("deletionGracePeriodSeconds")
            self.stop(float(grace) if grace is not None else self.grace, delete=True)

    def stop(self, grace: float, *, delete: bool) -> None:
        self.grace = grace
        self.deleting = self.deleting or delete
        if not self.stopping.is_set():
            log.info("Stopping pod %s (grace %gs).", self.name, grace, extra={"pod": self.name})
        self.stopping.set()

    async def run(self) -> None:
        self.rt.start_time = containers.now()
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            async with asyncio.TaskGroup() as tg:
                reporter = tg.create_task(self._report_loop())
                try:
                    await self._lifecycle()
                finally:
                    reporter.cancel()
            await self._report()
        finally:
            await asyncio.shield(self._teardown())
        if self.deleting:
            await self._delete()

    async def _lifecycle(self) -> None:
        host_network = bool(self.pod["spec"].get("hostNetwork"))
        if host_network or self.node.network is None:
            self.pod_ip = self.host_ip
        else:
            self._net = await self.node.network.add_pod(self.uid)
            self.pod_ip = self._net.ip
        self.rt.pod_ip = self.pod_ip
        self.rt.sandbox_ready = True
        self._write_etc()
        self._volumes = volumes.Volumes(
            self.node.client, self.pod, self.dir / "volumes", self.node.allocatable
        )
        if not await self._mount_volumes():
            return
        self.changed()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._refresh_volumes())
            try:
                for c in self.init:
                    ok = await c.run()
                    if self.stopping.is_set():
                        return
                    if not ok:
                        self.rt.failed_reason = "InitContainerFailed"
                        self.rt.failed_message = f"init container {c.name} failed"
                        return
                self.rt.initialized = True
                self.changed()
                async with asyncio.TaskGroup() as inner:
                    for c in self.main:
                        inner.create_task(c.run())
            finally:
                self.stopping.set()

    def _write_etc(self) -> None:
        etc = self.dir / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        host_resolv = ""
        with contextlib.suppress(OSError):
            host_resolv = pathlib.Path("/etc/resolv.conf").read_text()
        dom = self.node.cluster_domain
        (etc / "resolv.conf").write_text(
            resolv_conf(self.pod, self.node.cluster_dns, dom, host_resolv)
        )
        if not self.pod["spec"].get("hostNetwork"):
            hostname = str(self.pod["spec"].get("hostname") or self.pod["metadata"]["name"])
            (etc / "hosts").write_text(hosts_file(self.pod, self.pod_ip, hostname))
            (etc / "hostname").write_text(hostname + "\n")

    async def _mount_volumes(self) -> bool:
        """Materialise volumes, retrying while they can't be (a Secret not created yet...)."""
        assert self._volumes is not None
        delay = 1.0
        while not self.stopping.is_set():
            try:
                await self._volumes.materialise()
                for c in (*self.init, *self.main):
                    if c.rt.waiting_reason == "ContainerCreating" and c.rt.waiting_message:
                        c.rt.waiting_message = ""
                return True
            except (errors.ContainerConfigError, kubeapi.ApiError) as err:
                log.warning("Pod %s: volumes not ready: %s", self.name, err)
                for c in (*self.init, *self.main):
                    c.rt.waiting_reason = "ContainerCreating"
                    c.rt.waiting_message = f"MountVolume.SetUp failed: {err}"
                self.changed()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            delay = min(delay * 2, 30)
        return False

    async def _refresh_volumes(self) -> None:
        assert self._volumes is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 30)
            if self.stopping.is_set():
                return
            try:
                self._volumes.pod = self.pod
                await self._volumes.materialise()
            except (errors.AgentError, OSError) as err:
                log.warning("Pod %s: refreshing volumes failed: %s", self.name, err)

    async def _report_loop(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._report()
            except (kubeapi.ApiError, OSError, TimeoutError) as err:
                log.warning("Pod %s: status update failed: %s", self.name, err)
                self._changed.set()
                await asyncio.sleep(1)
            await asyncio.sleep(0.1)

    async def _report(self) -> None:
        meta = self.pod["metadata"]
        status = podstatus.build(self.pod, self.rt, containers.now())
        try:
            updated = await self.node.client.merge_patch(
                PODS, meta["namespace"], meta["name"],
                {"metadata": {"uid": self.uid}, "status": status}, subresource="status",
            )  # fmt: skip
        except kubeapi.ApiError as err:
            if err.status in (404, 409):
                return  # gone, or replaced by a pod of the same name
            raise
        self.pod = {**self.pod, "status": updated.get("status", status)}

    async def _teardown(self) -> None:
        for target in self._acquired:
            self.node.mounts.release(target)
        self._acquired.clear()
        if self._net is not None and self.node.network is not None:
            try:
                await self.node.network.remove_pod(self._net)
            except errors.NetworkError as err:
                log.warning("Pod %s: removing its network failed: %s", self.name, err)
            self._net = None
        shutil.rmtree(self.dir / "volumes", ignore_errors=True)

    async def _delete(self) -> None:
        meta = self.pod["metadata"]
        try:
            await self.node.client.request(
                "DELETE",
                PODS.path(meta["namespace"], meta["name"]),
                body={
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": self.uid},
                },
            )
            log.info("Deleted pod %s.", self.name, extra={"pod": self.name})
        except kubeapi.ApiError as err:
            if err.status not in (404, 409):
                log.warning("Pod %s: final delete failed: %s", self.name, err)


class PodManager:
    """Watches the pods bound to this node and runs a worker for each."""

    def __init__(self, node: NodeContext) -> None:
        self.node = node
        self.workers: dict[str, PodWorker] = {}
        self.finished: set[str] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def find(self, namespace: str, name: str) -> PodWorker | None:
        for w in self.workers.values():
            meta = w.pod["metadata"]
            if meta["namespace"] == namespace and meta["name"] == name:
                return w
        return None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            try:
                await self._watch()
            finally:
                # The agent stops: stop every pod's processes (quickly) before the task
                # group cancels the workers, so no container outlives the agent.
                for w in self.workers.values():
                    w.stop(min(w.grace, 3.0), delete=False)
                if self._tasks:
                    await asyncio.wait(self._tasks, timeout=8)

    async def _watch(self) -> None:
        """The pods bound to this node, through the shared informer (`kevents.informer`):
        pods deleted while the watch was down are reported after its relist."""
        pods = informer.Informer(
            self.node.client,
            informer.Collection(
                "", "v1", "pods", "Pod", field_selector=f"spec.nodeName={self.node.node_name}"
            ),
            self._handle,
            informer_metrics=informer.InformerMetrics(CollectorRegistry()),
            initial=True,
        )
        await pods.run()

    async def _handle(self, change: informer.Change, pod: Obj) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        worker = self.workers.get(uid)
        if change is informer.Change.DELETE:
            if worker is not None:
                worker.stop(0, delete=False)
            self.finished.discard(uid)
            return
        if worker is not None:
            worker.update(pod)
            return
        phase = (pod.get("status") or {}).get("phase")
        if uid in self.finished or phase in ("Succeeded", "Failed"):
            if meta.get("deletionTimestamp"):
                self.finished.discard(uid)
                await self._force_delete(pod)
            return
        if meta.get("deletionTimestamp"):
            await self._force_delete(pod)
            return
        worker = PodWorker(self.node, pod)
        self.workers[uid] = worker
        assert self._tg is not None
        task = self._tg.create_task(self._run_worker(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _force_delete(self, pod: Obj) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(kubeapi.ApiError):
            await self.node.client.request(
                "DELETE",
                PODS.path(meta["namespace"], meta["name"]),
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
            )

    async def _run_worker(self, worker: PodWorker) -> None:
        log.info("Starting pod %s.", worker.name, extra={"pod": worker.name})
        try:
            await worker.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Pod %s: worker failed.", worker.name)
        finally:
            self.workers.pop(worker.uid, None)
            self.finished.add(worker.uid)


def allocatable_from(node: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(k): str(v) for k, v in ((node.get("status") or {}).get("allocatable") or {}).items()
    }


def kill_leftover_processes(state: pathlib.Path) -> list[str]:
    """Kill container processes recorded by an agent that is gone (pid + start time checked)."""
    killed: list[str] = []
    for pidfile in sorted(state.glob("pods/*/pids/*")):
        try:
            pid_text, ticks_text = pidfile.read_text().split()
            rec = processes.Recorded(pidfile.name, int(pid_text), int(ticks_text), "")
        except (OSError, ValueError):
            pidfile.unlink(missing_ok=True)
            continue
        if processes.alive(rec):
            processes.stop(rec, grace=2.0)
            killed.append(f"{pidfile.parent.parent.name}/{pidfile.name} (pid {rec.pid})")
        pidfile.unlink(missing_ok=True)
    return killed
