"""The agent's settings, from its command line (hack/cluster passes them)."""

from __future__ import annotations

import argparse
import os
import pathlib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from hack.agent import kubeconfig


@dataclass(frozen=True)
class Settings:
    node_name: str
    """The Node's name; the client certificate must be CN=system:node:<node_name>."""
    kubeconfig: pathlib.Path
    """The node identity's kubeconfig (O=system:nodes, so the Node authorizer applies)."""
    admin_kubeconfig: pathlib.Path | None
    """Used only for the endpoints of `kubernetes` and `kube-dns`; None skips them."""
    state_dir: pathlib.Path
    """Per-pod folders (volumes, pid records) and container logs."""
    pki_dir: pathlib.Path
    """Holds ca.crt and the kubelet serving certificate kubelet.crt/kubelet.key."""
    kubelet_port: int
    """Port of the kubelet API (logs) on host_ip; published in the Node's daemonEndpoints."""
    host_ip: str = "127.0.0.1"
    """The node's InternalIP: where the apiserver reaches the kubelet API."""
    cluster_dns: str = "10.96.0.10"
    """ClusterIP of kube-dns, the pods' nameserver."""
    cluster_domain: str = "cluster.local"
    restart_backoff: float = 10.0
    """Seconds before the second restart of a crashing container (doubling, capped at 300)."""
    network: bool = True
    """Give pods their own network namespaces (root only); off: pods share the host's."""
    runtime: str = "process"
    """`process` (the image map's local commands) or `runc` (the images hack/build-images
    built); one pod chooses with the annotation `agent.kevents.dev/runtime`."""
    images: pathlib.Path | None = None
    """The OCI image layout for runc; None: the one build-images last made for this checkout."""

    @property
    def apiserver_port(self) -> int:
        return urllib.parse.urlsplit(kubeconfig.server(self.kubeconfig)).port or 443


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hack.agent", description="kevents node agent")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the agent until SIGTERM")
    run.add_argument("--node-name", default="kevents-node-0")
    run.add_argument("--kubeconfig", type=pathlib.Path, required=True)
    run.add_argument("--admin-kubeconfig", type=pathlib.Path)
    run.add_argument("--state-dir", type=pathlib.Path, required=True)
    run.add_argument("--pki-dir", type=pathlib.Path, required=True)
    run.add_argument("--kubelet-port", type=int, required=True)
    run.add_argument("--host-ip", default="127.0.0.1")
    run.add_argument("--cluster-dns", default="10.96.0.10")
    run.add_argument("--cluster-domain", default="cluster.local")
    run.add_argument("--restart-backoff", type=float, default=10.0)
    run.add_argument("--no-network", action="store_true")
    run.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=None,
        help="how containers run (default: $KEVENTS_AGENT_RUNTIME, else process)",
    )
    run.add_argument(
        "--images",
        type=pathlib.Path,
        default=None,
        help="OCI image layout for --runtime runc (default: $KEVENTS_AGENT_IMAGES, else the "
        "last hack/build-images output for this checkout)",
    )
    clean = sub.add_parser(
        "cleanup", help="kill leftover pods; with --network remove our netns/links/rules"
    )
    clean.add_argument("--state-dir", type=pathlib.Path, required=True)
    clean.add_argument(
        "--network",
        action="store_true",
        help="this cluster's agent owned the pod network: remove it (unless an agent holds it)",
    )
    sub.add_parser(
        "network-free", help="exit 0 when this host's pod network can be ours (root, unlocked)"
    )
    sub.add_parser("leftovers", help="list network objects of ours that still exist")
    return p


RUNTIMES = ("process", "runc")


def runtime_from(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """--runtime, else KEVENTS_AGENT_RUNTIME (reported by name when it is neither), else
    the process runtime."""
    if args.runtime:
        return str(args.runtime)
    value = env.get("KEVENTS_AGENT_RUNTIME", "") or "process"
    if value not in RUNTIMES:
        raise SystemExit(f"KEVENTS_AGENT_RUNTIME={value!r}: must be one of {', '.join(RUNTIMES)}")
    return value


def from_args(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> Settings:
    images = args.images or (
        pathlib.Path(env["KEVENTS_AGENT_IMAGES"]) if env.get("KEVENTS_AGENT_IMAGES") else None
    )
    return Settings(
        node_name=args.node_name,
        kubeconfig=args.kubeconfig,
        admin_kubeconfig=args.admin_kubeconfig,
        state_dir=args.state_dir,
        pki_dir=args.pki_dir,
        kubelet_port=args.kubelet_port,
        host_ip=args.host_ip,
        cluster_dns=args.cluster_dns,
        cluster_domain=args.cluster_domain,
        restart_backoff=args.restart_backoff,
        network=not args.no_network,
        runtime=runtime_from(args, env),
        images=images,
    )
