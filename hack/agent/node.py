"""The Node object: registration, status heartbeats and the Lease in kube-node-lease.

The node reports Ready only once its pod network is set up; its podCIDR comes from the
controller-manager's node IPAM (`--allocate-node-cidrs`) or from `spec.podCIDR` when set.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import platform
import uuid
from typing import Any

from hack.agent import errors
from kevents import kubeapi

log = logging.getLogger(__name__)

Obj = dict[str, Any]
KUBELET_VERSION = "v1.37.2"
LEASE_SECONDS = 40
LEASE_RENEW_SECONDS = 10.0
STATUS_SECONDS = 20.0
NODES = kubeapi.Resource("", "v1", "nodes", namespaced=False)
LEASES = kubeapi.Resource("coordination.k8s.io", "v1", "leases")
NODE_LEASES = "kube-node-lease"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now_seconds() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def capacity() -> dict[str, str]:
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    disk = os.statvfs("/")
    return {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{mem_kib}Ki",
        "pods": "110",
        "ephemeral-storage": f"{disk.f_blocks * disk.f_frsize // 1024}Ki",
    }


def _file(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def status(name: str, host_ip: str, kubelet_port: int, *, ready: bool, reason: str) -> Obj:
    """The node's status as a merge patch (lists whole)."""
    now = _now_seconds()
    cap = capacity()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())

    def cond(kind: str, value: bool, why: str, message: str) -> Obj:
        return {
            "type": kind,
            "status": "True" if value else "False",
            "reason": why,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return {
        "capacity": cap,
        "allocatable": cap,
        "addresses": [{"type": "InternalIP", "address": host_ip}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": {
            "machineID": _file("/etc/machine-id") or uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
            "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
            "bootID": _file("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": platform.release(),
            "osImage": "kevents local node",
            "containerRuntimeVersion": "kevents-agent://0.1.0",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": arch,
        },
        "conditions": [
            cond(
                "MemoryPressure", False, "KubeletHasSufficientMemory", "agent has sufficient memory"
            ),
            cond("DiskPressure", False, "KubeletHasNoDiskPressure", "agent has no disk pressure"),
            cond("PIDPressure", False, "KubeletHasSufficientPID", "agent has sufficient PID"),
            cond(
                "Ready",
                ready,
                reason,
                "kevents node agent is " + ("ready" if ready else "starting"),
            ),
        ],
    }


async def register(client: kubeapi.KubeApi, name: str) -> Obj:
    """Create our Node (or take over the existing one) with its labels."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
    }
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {},
    }
    try:
        node = await client.create(NODES, None, body)
        log.info("Registered node %s.", name)
    except kubeapi.Conflict:
        node = await client.merge_patch(NODES, None, name, {"metadata": {"labels": labels}})
        log.info("Node %s already registered; taking it over.", name)
    return node


async def wait_pod_cidr(client: kubeapi.KubeApi, name: str, seconds: float = 60) -> Obj:
    """The Node once the controller-manager gave it a podCIDR."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        node = await client.get(NODES, None, name)
        if node.get("spec", {}).get("podCIDR"):
            return node
        if asyncio.get_running_loop().time() > deadline:
            raise errors.AgentError(f"node {name} got no podCIDR within {seconds:.0f}s")
        await asyncio.sleep(0.5)


async def report(
    client: kubeapi.KubeApi, name: str, host_ip: str, kubelet_port: int, *, ready: bool
) -> Obj:
    body = {
        "status": status(
            name,
            host_ip,
            kubelet_port,
            ready=ready,
            reason="KubeletReady" if ready else "KubeletNotReady",
        )
    }
    return await client.request(
        "PATCH", NODES.path(None, name) + "/status", body=body, content_type=STRATEGIC_PATCH
    )


async def run_status(client: kubeapi.KubeApi, name: str, host_ip: str, kubelet_port: int) -> None:
    """Report the node Ready now and every STATUS_SECONDS (heartbeat)."""
    while True:
        try:
            await report(client, name, host_ip, kubelet_port, ready=True)
        except (kubeapi.ApiError, OSError, TimeoutError) as err:
            log.warning("Node status update failed: %s", err)
        await asyncio.sleep(STATUS_SECONDS)


async def run_lease(client: kubeapi.KubeApi, name: str) -> None:
    """Keep kube-node-lease/<name> renewed."""
    while True:
        spec = {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": _now(),
        }
        try:
            try:
                await client.merge_patch(LEASES, NODE_LEASES, name, {"spec": spec})
            except kubeapi.NotFound:
                node = await client.get(NODES, None, name)
                await client.create(
                    LEASES,
                    NODE_LEASES,
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {
                            "name": name,
                            "ownerReferences": [
                                {
                                    "apiVersion": "v1",
                                    "kind": "Node",
                                    "name": name,
                                    "uid": node["metadata"]["uid"],
                                }
                            ],
                        },
                        "spec": spec,
                    },
                )
        except (kubeapi.ApiError, OSError, TimeoutError) as err:
            log.warning("Lease renewal failed: %s", err)
        await asyncio.sleep(LEASE_RENEW_SECONDS)
