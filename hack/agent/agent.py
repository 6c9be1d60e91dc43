"""The agent as a whole: register the node, set up the network, run everything at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import sys
from collections.abc import AsyncIterator

from hack.agent import (
    containers,
    endpoints,
    images,
    imagestore,
    kubeconfig,
    kubeletapi,
    network,
    node,
    pods,
    runc,
    settings,
)
from kevents import kubeapi, kubeevents

log = logging.getLogger(__name__)


def _path_env() -> str:
    venv_bin = pathlib.Path(sys.executable).parent
    return f"{venv_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@contextlib.asynccontextmanager
async def _admin(s: settings.Settings) -> AsyncIterator[kubeapi.KubeApi | None]:
    if s.admin_kubeconfig is None:
        yield None
        return
    async with kubeconfig.connect(s.admin_kubeconfig) as admin:
        yield admin


async def run(s: settings.Settings) -> None:
    """Run until cancelled; on the way out every container process is stopped."""
    s.state_dir.mkdir(parents=True, exist_ok=True)
    for leftover in pods.kill_leftover_processes(s.state_dir):
        log.info("Killed leftover container process %s.", leftover)
    for leftover in runc.cleanup(s.state_dir):
        log.info("Removed leftover %s.", leftover)
    image_map = images.ImageMap.load()
    store = imagestore.ImageStore(
        s.images, s.state_dir / "rootfs", pathlib.Path(containers.PROJECT)
    )
    async with kubeconfig.connect(s.kubeconfig) as client, _admin(s) as admin:
        recorder = kubeevents.Recorder(client)
        await node.register(client, s.node_name)
        registered = await node.report(client, s.node_name, s.host_ip, s.kubelet_port, ready=False)
        net: network.Network | None = None
        if s.network:
            network.lock()
            registered = await node.wait_pod_cidr(client, s.node_name)
            network.cleanup(pods_only=True)
            net = network.Network(registered["spec"]["podCIDR"])
            await net.setup_host()
        ctx = pods.NodeContext(
            client=client,
            node_name=s.node_name,
            host_ip=s.host_ip,
            state=s.state_dir,
            network=net,
            images=image_map,
            allocatable=pods.allocatable_from(registered),
            cluster_dns=s.cluster_dns,
            cluster_domain=s.cluster_domain,
            backoff=containers.Backoff(base=s.restart_backoff),
            path_env=_path_env(),
            runc=runc.Runtime(store, s.state_dir, s.runtime),
            events=kubeevents.Emitter(recorder, kubeevents.Source("kubelet", s.node_name)),
        )
        manager = pods.PodManager(ctx)

        def lookup(ns: str, pod: str, container: str) -> pathlib.Path | None:
            worker = manager.find(ns, pod)
            if worker is not None:
                folder = worker.log_dir(container)
                return folder if folder.exists() else None
            found = sorted(
                ctx.log_root().glob(f"{ns}_{pod}_*/{container}"),
                key=lambda p: p.stat().st_mtime,
            )
            return found[-1] if found else None

        def running(ns: str, pod: str, container: str) -> bool:
            worker = manager.find(ns, pod)
            if worker is None:
                return False
            return any(
                c.name == container and c.pid is not None for c in (*worker.init, *worker.main)
            )

        app = kubeletapi.make_app(lookup, running)
        tls = kubeletapi.server_ssl(
            s.pki_dir / "ca.crt", s.pki_dir / "kubelet.crt", s.pki_dir / "kubelet.key"
        )
        async with asyncio.TaskGroup() as tg:
            tg.create_task(recorder.run())
            tg.create_task(kubeletapi.serve(app, s.host_ip, s.kubelet_port, tls))
            tg.create_task(node.run_lease(client, s.node_name))
            if admin is not None and net is not None:
                port = s.apiserver_port
                tg.create_task(endpoints.forward(net.gateway, port, "127.0.0.1", port))
                tg.create_task(endpoints.run(admin, net.gateway, port, s.cluster_dns))
            tg.create_task(manager.run())
            tg.create_task(node.run_status(client, s.node_name, s.host_ip, s.kubelet_port))
            log.info("Node %s is ready (pid %d).", s.node_name, os.getpid())
