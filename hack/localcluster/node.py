"""How `hack/cluster` runs the node: the agent, kube-proxy and CoreDNS, and cleans up after.

The agent (`hack/agent`) is driven through its command line only, as a kubelet is through
its flags: `python -m hack.agent run` is the node, `network-free` says whether it may own the
host's pod network, `cleanup` removes what its pods left. Neither package imports the other.

`up` calls `start()` once the scheduler is ready: it issues the node's client certificate
(CN=system:node:<node>, O=system:nodes) and the kubelet API's serving certificate, starts the
agent, waits for the Node to be Ready (its pod network set up), then starts the real
kube-proxy (nftables mode, from the multi-call binary) and CoreDNS (built from its Go module
by hack/build-coredns) on the node's bridge address. All three are recorded in state.json like
the control plane, so `down` stops them; `down` then calls `cleanup()`, which has the agent
kill any container process left behind and, when this cluster's agent owned the pod network
(`agent/network-owner`), remove every netns, veth, bridge and nftables table of ours.

Without root (no network namespaces), or while another local cluster's agent owns the pod
network of this host (the agent's lock), the agent runs pods in the host network and neither
kube-proxy nor CoreDNS is started.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pathlib
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol

from hack import cache, ports, processes
from hack.localcluster import pki

NODE_NAME = "kevents-node-0"
REPO = pathlib.Path(__file__).resolve().parents[2]
CLUSTER_CIDR = "10.244.0.0/16"
CLUSTER_DNS = "10.96.0.10"


class HookError(Exception):
    """A node component failed to start."""


class StateLike(Protocol):
    ports: dict[str, int]
    started: list[processes.Recorded]

    def save(self, directory: pathlib.Path) -> None: ...


def _agent(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m hack.agent ARGS` from the repository, its output captured."""
    argv = [sys.executable, "-m", "hack.agent", *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)


def networking() -> bool:
    """True when this cluster can own the host's pod network (root, and no other owner)."""
    return os.geteuid() == 0 and _agent("network-free").returncode == 0


def coredns_binary(*, build: bool) -> str | None:
    """CoreDNS from the cache (building it when `build`), or None when unavailable."""
    script = REPO / "hack" / "build-coredns"
    if not build:
        found = sorted(cache.root().glob("coredns/*/coredns"))
        return str(found[-1]) if found else None
    proc = subprocess.run([str(script)], stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return proc.stdout.strip().splitlines()[-1]


def expected(directory: pathlib.Path) -> tuple[str, ...]:
    """The names `start()` records, for `up`'s already-running check."""
    if not (directory / "agent" / "network-owner").exists() and not networking():
        return ("kevents-agent",)
    names = ["kevents-agent", "kube-proxy"]
    if coredns_binary(build=False):
        names.append("coredns")
    return tuple(names)


def _admin_get(directory: pathlib.Path, server: str, path: str) -> Any:
    pk = directory / "pki"
    ctx = ssl.create_default_context(cafile=str(pk / "ca.crt"))
    ctx.load_cert_chain(str(pk / "admin.crt"), str(pk / "admin.key"))
    with urllib.request.urlopen(server + path, timeout=3, context=ctx) as resp:
        return json.loads(resp.read())


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 200 <= int(resp.status) < 300
    except (OSError, urllib.error.URLError):
        return False


def _wait(what: str, check: Callable[[], bool], rec: processes.Recorded, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        if not processes.alive(rec):
            raise HookError(f"{what} exited during start-up:\n{processes.tail(rec.log)}")
        time.sleep(0.25)
    raise HookError(f"{what} not ready within {seconds:.0f}s:\n{processes.tail(rec.log)}")


def _address_assigned(address: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
        return True


def _wait_for_address(address: str, seconds: float) -> None:
    """Wait until the host has `address` (the pod bridge's, which the agent assigns while it
    sets the network up): CoreDNS listens on it and exits at once if it is not there yet."""
    deadline = time.monotonic() + seconds
    while not _address_assigned(address):
        if time.monotonic() > deadline:
            raise HookError(f"the pod bridge address {address} was not assigned within "
                            f"{seconds:.0f}s")  # fmt: skip
        time.sleep(0.1)


def _node(directory: pathlib.Path, server: str) -> dict[str, Any] | None:
    try:
        node: dict[str, Any] = _admin_get(directory, server, f"/api/v1/nodes/{NODE_NAME}")
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return node


def _node_ready(directory: pathlib.Path, server: str) -> bool:
    node = _node(directory, server)
    conds = (node or {}).get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def corefile(gateway: str, health_port: int, kubeconfig: pathlib.Path) -> str:
    return f"""\
.:53 {{
    bind {gateway}
    errors
    health 127.0.0.1:{health_port}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} kevents-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
    loadbalance
}}
"""


def start(
    directory: pathlib.Path,
    st: StateLike,
    binary: str,
    server: str,
    log: Callable[[str], None],
) -> None:
    """Start agent, kube-proxy and CoreDNS after the control plane (see module doc)."""
    pk = directory / "pki"
    pki.issue(pk, "node", f"system:node:{NODE_NAME}", organization="system:nodes")
    pki.issue(
        pk, "kubelet", NODE_NAME, dns_names=("localhost", NODE_NAME),
        ip_addresses=("127.0.0.1",), server=True,
    )  # fmt: skip
    for name in ("kubelet", "proxy-healthz", "proxy-metrics", "coredns-health"):
        st.ports[name] = ports.free_port()
    logs = directory / "logs"
    argv = [
        sys.executable, "-m", "hack.agent", "run",
        f"--node-name={NODE_NAME}",
        f"--kubeconfig={directory / 'node.kubeconfig'}",
        f"--admin-kubeconfig={directory / 'admin.kubeconfig'}",
        f"--state-dir={directory / 'agent'}",
        f"--pki-dir={pk}",
        f"--kubelet-port={st.ports['kubelet']}",
        f"--cluster-dns={CLUSTER_DNS}",
    ]  # fmt: skip
    owner = directory / "agent" / "network-owner"
    if networking():
        owner.parent.mkdir(parents=True, exist_ok=True)
        owner.write_text("this cluster's agent set up the host's pod network\n")
    else:
        owner.unlink(missing_ok=True)
        argv.append("--no-network")
    rec = processes.spawn("kevents-agent", argv, logs / "kevents-agent.log", cwd=REPO)
    st.started.append(rec)
    st.save(directory)
    log(f"started kevents-agent (pid {rec.pid})")
    _wait("kevents-agent", lambda: _node_ready(directory, server), rec, 90)
    if not owner.exists():
        log("no pod network (not root, or another local cluster owns it): pods share the host")
        log("network; no kube-proxy or cluster DNS")
        return
    node = _node(directory, server) or {}
    cidr = ipaddress.ip_network(node["spec"]["podCIDR"])
    gateway = str(next(cidr.hosts()))
    proxy_argv = [
        binary, "kube-proxy",
        f"--kubeconfig={directory / 'proxy.kubeconfig'}",
        f"--hostname-override={NODE_NAME}",
        "--proxy-mode=nftables",
        f"--cluster-cidr={CLUSTER_CIDR}",
        "--masquerade-all",
        f"--nodeport-addresses={gateway}/32",
        f"--healthz-bind-address=127.0.0.1:{st.ports['proxy-healthz']}",
        f"--metrics-bind-address=127.0.0.1:{st.ports['proxy-metrics']}",
        "--conntrack-max-per-core=0",
        "--conntrack-tcp-timeout-established=0",
        "--conntrack-tcp-timeout-close-wait=0",
    ]  # fmt: skip
    rec = processes.spawn("kube-proxy", proxy_argv, logs / "kube-proxy.log")
    st.started.append(rec)
    st.save(directory)
    log(f"started kube-proxy (pid {rec.pid})")
    url = f"http://127.0.0.1:{st.ports['proxy-healthz']}/healthz"
    _wait("kube-proxy", lambda: _http_ok(url), rec, 60)
    coredns = coredns_binary(build=True)
    if coredns is None:
        log("CoreDNS could not be built (see hack/build-coredns); pods have no cluster DNS")
        return
    _wait_for_address(gateway, 60)
    conf = directory / "coredns" / "Corefile"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(corefile(gateway, st.ports["coredns-health"], directory / "admin.kubeconfig"))
    rec = processes.spawn("coredns", [coredns, "-conf", str(conf)], logs / "coredns.log")
    st.started.append(rec)
    st.save(directory)
    log(f"started coredns (pid {rec.pid})")
    url = f"http://127.0.0.1:{st.ports['coredns-health']}/health"
    _wait("coredns", lambda: _http_ok(url), rec, 60)


def cleanup(directory: pathlib.Path) -> list[str]:
    """After `down` stopped the processes: no container, netns, link or rule of ours is left.

    The pod network is removed only when this cluster's agent set it up and no agent holds it
    now (another local cluster's, started since)."""
    owner = directory / "agent" / "network-owner"
    args = ["cleanup", f"--state-dir={directory / 'agent'}"]
    if owner.exists():
        args.append("--network")
    proc = _agent(*args)
    done = [line for line in proc.stdout.splitlines() if line]
    if proc.returncode == 0:
        owner.unlink(missing_ok=True)
    elif proc.returncode != 2:  # 2: an agent holds the network, which stays (and the marker)
        done.append(f"python -m hack.agent cleanup failed: {proc.stderr.strip()}")
    return done
